FROM alpine
RUN echo no newline at end