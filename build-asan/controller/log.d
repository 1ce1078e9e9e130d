build-asan/controller/log.o: controller/log.c controller/log.h
controller/log.h:
