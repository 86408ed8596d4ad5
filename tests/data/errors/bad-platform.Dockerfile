FROM --platform=linux/amd64/v1/zz alpine
