# only comments

# here
