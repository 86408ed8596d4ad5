FROM alpine
COPY --chmod=abc --frob=1 a b
ENV ONLYKEY
HEALTHCHECK --interval=xyz CMD true
USER
FROM alpine AS ok
