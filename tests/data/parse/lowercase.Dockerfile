from alpine as builder
run echo lower
from builder
copy --from=builder /a /b
cmd ["true"]
