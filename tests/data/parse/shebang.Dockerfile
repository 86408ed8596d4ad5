#!/usr/bin/env buildctl-like-runner
# escape=`
FROM alpine
RUN echo a \
    b
