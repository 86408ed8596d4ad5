FROM busybox
RUN echo shell form
RUN ["echo", "exec", "form"]
RUN [ "echo", 'not json' ]
RUN [not json either]
RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked pip install x
RUN --mount=type=secret,id=token,target=/run/secrets/t,required=true cat /run/secrets/t
RUN --mount=type=bind,from=busybox,source=/bin,target=/mnt,rw ls /mnt
RUN --mount=type=tmpfs,target=/tmp,size=64m --network=none --security=sandbox true
RUN --mount=type=ssh,id=default,target=/run/ssh.sock ssh-add -l
CMD echo shell
ENTRYPOINT exec top -b
