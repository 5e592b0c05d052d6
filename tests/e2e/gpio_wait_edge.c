/* gpio-wait-edge NAME: find the GPIO line called NAME (the device tree's
 * gpio-line-names) on /dev/gpiochip*, request it as an input with rising-edge
 * detection, say so on stdout, then block until the edge arrives - the
 * GPIO controller's interrupt - and print it. Exit 0 after an edge, 1 if the
 * line is missing or cannot be watched.
 *
 * The arm64 guest's power key watcher for tests/e2e/control_e2e.py: Debian's
 * arm64 cloud kernel has no gpio-keys driver, so guest userspace watches the
 * power key's line itself (libgpiod's `gpiomon` does the same). Built static
 * with aarch64-linux-gnu-gcc and packed next to the guest's /autorun. */
#include <fcntl.h>
#include <linux/gpio.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int watch(int chip_fd, const char* chip, unsigned line, const char* label) {
  struct gpio_v2_line_request req;
  memset(&req, 0, sizeof(req));
  req.offsets[0] = line;
  req.num_lines = 1;
  req.config.flags = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING;
  snprintf(req.consumer, sizeof(req.consumer), "skiff-e2e-power-key");
  if (ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &req) < 0) {
    perror("GPIO_V2_GET_LINE_IOCTL");
    return 1;
  }
  printf("SKIFF-E2E: power key line %s %u (chip %s)\n", chip, line, label);
  printf("SKIFF-E2E: ready\n");
  fflush(stdout);
  struct gpio_v2_line_event event;
  if (read(req.fd, &event, sizeof(event)) != (ssize_t)sizeof(event)) {
    perror("read line event");
    return 1;
  }
  printf("SKIFF-E2E: power key edge %s on line %u\n",
         event.id == GPIO_V2_LINE_EVENT_RISING_EDGE ? "rising" : "falling", event.offset);
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gpio-wait-edge LINE-NAME\n");
    return 2;
  }
  for (int n = 0; n < 64; ++n) {
    char path[32];
    snprintf(path, sizeof(path), "/dev/gpiochip%d", n);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    struct gpiochip_info chip;
    memset(&chip, 0, sizeof(chip));
    if (ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &chip) == 0) {
      for (unsigned line = 0; line < chip.lines; ++line) {
        struct gpio_v2_line_info info;
        memset(&info, 0, sizeof(info));
        info.offset = line;
        if (ioctl(fd, GPIO_V2_GET_LINEINFO_IOCTL, &info) == 0 && strcmp(info.name, argv[1]) == 0) {
          return watch(fd, path + strlen("/dev/"), line, chip.label);
        }
      }
    }
    close(fd);
  }
  printf("SKIFF-E2E: power key line none (no GPIO line named %s)\n", argv[1]);
  fflush(stdout);
  return 1;
}
