FROM alpine
RUN --mount=type=bogus,target=/x true
RUN --network=wifi true
