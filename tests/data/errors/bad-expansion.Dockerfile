FROM alpine
COPY ${A:?must be set} /x
ENV B=${unterminated
