/* Unit tests for base64 (src/common/base64.c): RFC 4648's vectors, both
 * ways, and the strictness of the decoder (one text per byte string). */
#include "base64.h"
#include "tap.h"

static void
roundtrip (const char *data, const char *text)
{
  char *enc = sbx_base64_encode (data, strlen (data));
  ok (enc && strcmp (enc, text) == 0, "'%s' encodes to '%s' (got '%s')", data, text,
      enc ? enc : "NULL");
  free (enc);
  unsigned char *dec = NULL;
  size_t len = 0;
  const char *why = NULL;
  int r = sbx_base64_decode (text, strlen (text), &dec, &len, &why);
  ok (r == 0 && len == strlen (data) && memcmp (dec, data, len) == 0 && dec[len] == '\0',
      "'%s' decodes to '%s'", text, data);
  free (dec);
}

static void
refused (const char *text, size_t len, const char *reason)
{
  unsigned char *dec = (unsigned char *) "x";
  size_t n = 1;
  const char *why = NULL;
  int r = sbx_base64_decode (text, len, &dec, &n, &why);
  /* The text shown with its control characters as '?': TAP wants one line. */
  char shown[64];
  size_t k = 0;
  for (; k < len && k + 1 < sizeof shown; k++)
    shown[k] = text[k] < 0x20 ? '?' : text[k];
  shown[k] = '\0';
  ok (r == -1 && dec == NULL && n == 0 && why && strcmp (why, reason) == 0,
      "'%s' is refused: %s (got %d, %s)", shown, reason, r, why ? why : "none");
}

int
main (void)
{
  roundtrip ("", "");
  roundtrip ("f", "Zg==");
  roundtrip ("fo", "Zm8=");
  roundtrip ("foo", "Zm9v");
  roundtrip ("foob", "Zm9vYg==");
  roundtrip ("fooba", "Zm9vYmE=");
  roundtrip ("foobar", "Zm9vYmFy");
  roundtrip ("\xff\xfe\xfd", "//79");
  roundtrip ("\xfb\xff", "+/8=");

  unsigned char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char) i;
  char *enc = sbx_base64_encode (all, sizeof all);
  unsigned char *dec = NULL;
  size_t len = 0;
  const char *why = NULL;
  ok (enc && sbx_base64_decode (enc, strlen (enc), &dec, &len, &why) == 0 && len == 256
          && memcmp (dec, all, 256) == 0,
      "all 256 byte values survive the round trip");
  free (enc);
  free (dec);

  const char *length = "its length is not a multiple of 4";
  const char *alphabet = "it holds a character outside the base64 alphabet";
  const char *padding = "it has padding before its end";
  const char *bits = "its last character has bits set past the data";
  refused ("Zg=", 3, length);
  refused ("Zm9vY", 5, length);
  refused ("Zm9v\n", 5, length);
  refused ("Zm9vYmFy\n\n\n\n", 12, alphabet);
  refused ("Zm-v", 4, alphabet);
  refused ("Zm_v", 4, alphabet);
  refused ("Zm9 ", 4, alphabet);
  refused ("Zm\0v", 4, alphabet);
  refused ("Zg==Zg==", 8, padding);
  refused ("Z===", 4, padding);
  refused ("====", 4, padding);
  refused ("=Zg=", 4, padding);
  refused ("Zh==", 4, bits);
  refused ("Zm9=", 4, bits);
  refused ("QR==", 4, bits);
  return done_testing ();
}
