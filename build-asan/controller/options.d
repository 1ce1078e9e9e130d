build-asan/controller/options.o: controller/options.c \
 controller/options.h
controller/options.h:
