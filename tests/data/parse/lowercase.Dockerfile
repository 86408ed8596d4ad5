from alpine as builder
run echo lower
copy --from=builder /a /b
cmd ["true"]
