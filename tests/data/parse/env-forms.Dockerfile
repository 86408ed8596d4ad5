FROM alpine
ENV name value with spaces
ENV name=value name2="quoted value" name3=escaped\ space
ENV e1='single "double" inside' e2="double 'single' inside"
ENV empty="" other=
LABEL "com.example.vendor"="ACME Incorporated"
LABEL multi.label1="value1" multi.label2="value2" other="value3"
LABEL description="This text illustrates \
that label-values can span multiple lines."
ARG user1=someuser
ARG buildno
ARG quoted="a b" plain
