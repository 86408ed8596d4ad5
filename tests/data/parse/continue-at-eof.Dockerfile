FROM alpine
RUN echo hello \
