# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended;error=false
# escape=\
FROM alpine
CMD echo skipped warning
