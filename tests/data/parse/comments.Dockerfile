# leading comment
FROM alpine

# describes the stage
#
# after an empty comment
   # indented comment
RUN echo "# not a comment" # neither is this
  RUN echo indented instruction
