FROM alpine
RUN --mount=type=cache true
COPY --frmo=x a b
