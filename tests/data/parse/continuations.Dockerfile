FROM alpine
RUN apk add --no-cache \
    # a comment inside the continuation is dropped
    curl \

    git
RUN echo one \
  two \
  three
RUN echo "literal backslash at end" \\
RUN echo trailing-space-after-backslash \   
    done
ENV A=1 \
    B=2
