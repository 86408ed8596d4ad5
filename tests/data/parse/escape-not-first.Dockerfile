FROM alpine
# escape=`
RUN echo a \
    b
