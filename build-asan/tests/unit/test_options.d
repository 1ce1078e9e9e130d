build-asan/tests/unit/test_options.o: tests/unit/test_options.c \
 controller/options.h
controller/options.h:
