# syntax=docker/dockerfile:1
FROM debian
RUN <<EOF
apt-get update
apt-get install -y curl
EOF
RUN <<-"EOT" bash
	echo "tabs stripped, no expansion: $HOME"
	EOT
RUN python3 <<PY
print("hello from python")
PY
RUN cat <<EOF > /etc/motd
Welcome $USER
EOF
RUN <<A cat && <<'B' cat
first
A
second $NOT_EXPANDED
B
RUN 3<<FD cat /dev/fd/3
on fd three
FD
COPY <<EOF /app/config.ini
[server]
port = 8080
EOF
COPY <<one <<two /dest/
1
one
2
two
ADD <<EOF /x
added
EOF
RUN ["echo", "<<EOF"]
RUN echo "<<NOTHEREDOC"
ONBUILD RUN <<EOF
echo onbuild heredoc
EOF
