/* The on-disk program binary cache and atomic file writes.
 *
 * Entry layout (little-endian host order; the key already names the device):
 *   "LAMPPRG1" | u64 key | u64 key_text_len | key_text | u64 binary_len | u64 binary_hash | binary
 * An entry is accepted only if its length adds up exactly, its key and key text match the
 * request, and the binary hashes to the stored value. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char lamp__cache_magic[8] = {'L', 'A', 'M', 'P', 'P', 'R', 'G', '1'};

lamp_status lamp__read_file(lamp_context *ctx, const char *path, char **data, size_t *size) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return lamp__fail(ctx, LAMP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  lamp_status st = LAMP_OK;
  char *buf = NULL;
  long len = -1;
  if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    st = lamp__fail(ctx, LAMP_ERR_IO, "cannot size %s: %s", path, strerror(errno));
  } else if (!(buf = malloc((size_t)len + 1))) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory reading %s (%ld bytes)", path,
                    len);
  } else if (len && fread(buf, 1, (size_t)len, f) != (size_t)len) {
    st = lamp__fail(ctx, LAMP_ERR_IO, "short read from %s", path);
  }
  fclose(f);
  if (st != LAMP_OK) {
    free(buf);
    return st;
  }
  buf[len] = '\0';
  *data = buf;
  *size = (size_t)len;
  return LAMP_OK;
}

static int lamp__mkdirs(const char *dir) {
  char tmp[1024];
  if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp)) return -1;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
  return 0;
}

lamp_status lamp__write_file_atomic(lamp_context *ctx, const char *path, const void *data,
                                    size_t size) {
  char dir[1024], tmp[1100];
  if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "path too long: %s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (lamp__mkdirs(dir) != 0)
      return lamp__fail(ctx, LAMP_ERR_IO, "cannot create folder %s: %s", dir, strerror(errno));
  }
  snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return lamp__fail(ctx, LAMP_ERR_IO, "cannot create a temporary file beside %s: %s", path,
                      strerror(errno));
  const unsigned char *p = data;
  size_t left = size;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return lamp__fail(ctx, LAMP_ERR_IO, "writing %s failed: %s", tmp, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return lamp__fail(ctx, LAMP_ERR_IO, "flushing %s failed: %s", tmp, strerror(e));
  }
  if (chmod(tmp, 0644) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return lamp__fail(ctx, LAMP_ERR_IO, "renaming %s to %s failed: %s", tmp, path, strerror(e));
  }
  /* the rename is durable only once the folder's entry is on disk */
  const char *folder = slash == dir ? "/" : slash ? dir : ".";
  int dfd = open(folder, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    int bad = fsync(dfd) != 0 && errno != EINVAL && errno != EROFS ? errno : 0;
    close(dfd);
    if (bad)
      return lamp__fail(ctx, LAMP_ERR_IO, "flushing folder %s after writing %s failed: %s",
                        folder, path, strerror(bad));
  }
  return LAMP_OK;
}

void lamp__cache_path(const lamp_context *ctx, uint64_t key, char *path, size_t path_size) {
  snprintf(path, path_size, "%s/programs/%016llx.bin", ctx->cache_dir, (unsigned long long)key);
}

void lamp__cache_discard(const lamp_context *ctx, uint64_t key) {
  char path[1200];
  lamp__cache_path(ctx, key, path, sizeof(path));
  unlink(path);
}

static uint64_t lamp__get_u64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof(v));
  return v;
}

lamp_status lamp__cache_load(lamp_context *ctx, uint64_t key, const char *key_text,
                             unsigned char **binary, size_t *size) {
  *binary = NULL;
  *size = 0;
  char path[1200];
  lamp__cache_path(ctx, key, path, sizeof(path));
  if (access(path, F_OK) != 0) return LAMP_ERR_NOT_FOUND;
  char *raw = NULL;
  size_t len = 0;
  lamp_status st = lamp__read_file(ctx, path, &raw, &len);
  if (st != LAMP_OK) return st == LAMP_ERR_OUT_OF_MEMORY ? st : LAMP_ERR_FORMAT;

  const unsigned char *p = (const unsigned char *)raw;
  size_t key_len = strlen(key_text);
  size_t pos = 0;
  st = LAMP_ERR_FORMAT;
  if (len < 8 + 8 + 8 || memcmp(p, lamp__cache_magic, 8) != 0) goto done;
  pos = 8;
  if (lamp__get_u64(p + pos) != key) goto done;
  pos += 8;
  if (lamp__get_u64(p + pos) != key_len) goto done;
  pos += 8;
  if (len - pos < key_len + 16 || memcmp(p + pos, key_text, key_len) != 0) goto done;
  pos += key_len;
  uint64_t bin_len = lamp__get_u64(p + pos);
  uint64_t bin_hash = lamp__get_u64(p + pos + 8);
  pos += 16;
  if (bin_len == 0 || bin_len != len - pos) goto done;
  if (lamp__hash64(LAMP__HASH_SEED, p + pos, (size_t)bin_len) != bin_hash) goto done;
  *binary = malloc((size_t)bin_len);
  if (!*binary) {
    st = LAMP_ERR_OUT_OF_MEMORY;
    goto done;
  }
  memcpy(*binary, p + pos, (size_t)bin_len);
  *size = (size_t)bin_len;
  st = LAMP_OK;
done:
  free(raw);
  return st;
}

lamp_status lamp__cache_store(lamp_context *ctx, uint64_t key, const char *key_text,
                              const unsigned char *binary, size_t size) {
  size_t key_len = strlen(key_text);
  size_t total = 8 + 8 + 8 + key_len + 16 + size;
  unsigned char *buf = malloc(total);
  if (!buf) return LAMP_ERR_OUT_OF_MEMORY;
  uint64_t fields[2];
  size_t pos = 0;
  memcpy(buf, lamp__cache_magic, 8);
  pos = 8;
  fields[0] = key;
  fields[1] = key_len;
  memcpy(buf + pos, fields, 16);
  pos += 16;
  memcpy(buf + pos, key_text, key_len);
  pos += key_len;
  fields[0] = size;
  fields[1] = lamp__hash64(LAMP__HASH_SEED, binary, size);
  memcpy(buf + pos, fields, 16);
  pos += 16;
  memcpy(buf + pos, binary, size);
  char path[1200];
  lamp__cache_path(ctx, key, path, sizeof(path));
  lamp_status st = lamp__write_file_atomic(ctx, path, buf, total);
  free(buf);
  return st;
}
