hello
more
again
