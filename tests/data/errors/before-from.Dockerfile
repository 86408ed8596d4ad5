ENV A=b
FROM alpine
