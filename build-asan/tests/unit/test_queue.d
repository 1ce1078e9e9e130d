build-asan/tests/unit/test_queue.o: tests/unit/test_queue.c \
 controller/queue.h
controller/queue.h:
