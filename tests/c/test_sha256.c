/* SHA-256 against the FIPS 180-2 example vectors and the padding boundaries (55, 56, 63, 64,
 * 119, 120 bytes: one or two final blocks), checked against coreutils' sha256sum. */
#include "sha256.h"

#include "test.h"

static const char *hash(const char *s, size_t len, char hex[65]) {
  spine_sha256_hex(s, len, hex);
  return hex;
}

TEST_IMPL(sha256_vectors) {
  char hex[65];
  ASSERT_STR_EQ(hash("", 0, hex),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ASSERT_STR_EQ(hash("abc", 3, hex),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  ASSERT_STR_EQ(hash(m448, strlen(m448), hex),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  size_t million = 1000000;
  char *a = malloc(million);
  ASSERT(a != NULL);
  memset(a, 'a', million);
  ASSERT_STR_EQ(hash(a, million, hex),
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  static const struct {
    size_t n;
    const char *hex;
  } edges[] = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
  };
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
    ASSERT_STR_EQ(hash(a, edges[i].n, hex), edges[i].hex);
  free(a);
  return 0;
}
