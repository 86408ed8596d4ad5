FROM alpine
COPY onlyone
ADD
WORKDIR
