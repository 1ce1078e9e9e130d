build-asan/controller/queue.o: controller/queue.c controller/queue.h \
 controller/kube/backoff.h
controller/queue.h:
controller/kube/backoff.h:
