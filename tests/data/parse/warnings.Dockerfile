ARG VERSION=1.0
FROM alpine as Build
MAINTAINER someone@example.com
ENV KEY value
LABEL v=$VERSION
EXPOSE 80/TCP
WORKDIR relative
CMD echo one
CMD echo two
FROM scratch
COPY --from=build $MISSING /x
