/*
 * daemon — background mode, pidfile and systemd notification
 * (include/warmpool/daemon.h).
 *
 * `-d` forks twice (the classic way to leave the session and never reacquire a
 * terminal) and keeps a pipe from the grandchild back to the original process. The
 * original process exits 0 only when the grandchild says it is listening, so scripts
 * that run `warmpool -d` learn about a taken port or a bad pidfile from the exit code.
 *
 * The pidfile is locked with flock() for the life of the process. The lock, not the
 * pid inside, decides whether an instance is running: a pid can be reused by an
 * unrelated process after a crash and reboot, a lock dies with its holder.
 *
 * sd_notify is a datagram to the unix socket named by $NOTIFY_SOCKET ('@' = abstract
 * namespace); writing it ourselves keeps libsystemd out of the dependencies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "warmpool/daemon.h"

static int ready_fd = -1;   /* write end of the pipe to a waiting -d parent */
static int detached;        /* we are the background grandchild */
static int pidfile_fd = -1; /* holds the flock */
static char *pidfile_path;
static pid_t pidfile_pid; /* who took it: only that process removes it */

/* ---------------------------------------------------------------- -d */

/* The original process: wait for one byte from the daemon. EOF means it died. */
static void wait_for_daemon(int fd, pid_t middle)
{
    char c = 0;
    ssize_t n;
    waitpid(middle, NULL, 0);
    do {
        n = read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && c == 'R')
        _exit(0);
    fprintf(stderr, "warmpool: the background process exited during start-up\n");
    _exit(1);
}

int daemon_detach(char *err, size_t errlen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid > 0) {
        close(fds[1]);
        wait_for_daemon(fds[0], pid);
    }
    close(fds[0]);
    if (setsid() < 0)
        _exit(1);
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0);
    umask(022);
    ready_fd = fds[1];
    detached = 1;
    return 0;
}

static void stdio_to_devnull(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
}

void daemon_ready(void)
{
    char msg[128];
    if (detached) {
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=accepting connections\nMAINPID=%ld",
                 (long)getpid());
    } else {
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=accepting connections");
    }
    daemon_notify(msg);
    if (ready_fd >= 0) {
        ssize_t n;
        do {
            n = write(ready_fd, "R", 1);
        } while (n < 0 && errno == EINTR);
        close(ready_fd);
        ready_fd = -1;
        stdio_to_devnull();
    }
}

/* ---------------------------------------------------------------- pidfile */

static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0)
        return 0;
    return pid;
}

int daemon_pidfile_acquire(const char *path, char *err, size_t errlen)
{
    if (!path || !*path)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        long pid = read_pid(fd);
        close(fd);
        if (e == EWOULDBLOCK && pid > 0)
            snprintf(err, errlen, "pidfile %s: warmpool is already running as pid %ld", path, pid);
        else if (e == EWOULDBLOCK)
            snprintf(err, errlen, "pidfile %s: locked by another process", path);
        else
            snprintf(err, errlen, "pidfile %s: lock: %s", path, strerror(e));
        return -1;
    }
    /* Unlocked: either new or left behind by a process that is gone. */
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        snprintf(err, errlen, "pidfile %s: write: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    free(pidfile_path);
    pidfile_path = strdup(path);
    if (!pidfile_path) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -1;
    }
    pidfile_fd = fd;
    pidfile_pid = getpid();
    return 0;
}

void daemon_pidfile_release(void)
{
    if (pidfile_fd < 0)
        return;
    /* Unlink while still holding the lock, so a starting instance never sees our
       file unlocked with our pid in it. */
    if (pidfile_pid == getpid())
        unlink(pidfile_path);
    close(pidfile_fd);
    pidfile_fd = -1;
    free(pidfile_path);
    pidfile_path = NULL;
}

long daemon_pidfile_owner(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            pid = read_pid(fd);
        else
            pid = -1;
    }
    close(fd);
    return pid;
}

/* ---------------------------------------------------------------- sd_notify */

int daemon_notify_address(const char *value, struct sockaddr_un *addr, unsigned *len)
{
    if (!value || (value[0] != '/' && value[0] != '@') || value[1] == '\0')
        return -1;
    size_t n = strlen(value);
    if (n >= sizeof addr->sun_path)
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, value, n);
    if (value[0] == '@') {
        /* Abstract namespace: leading NUL, and the length counts only the name's
           bytes — no terminating NUL, or the kernel looks up a different name. */
        addr->sun_path[0] = '\0';
        *len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int daemon_notify(const char *state)
{
    const char *value = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    unsigned len;
    if (!value || !*value)
        return 0;
    if (daemon_notify_address(value, &addr, &len) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n =
        sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, (socklen_t)len);
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 1;
}
