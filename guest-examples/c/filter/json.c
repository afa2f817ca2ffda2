/* The JSON reader declared in json.h: recursive descent over a byte
 * buffer with explicit bounds checks on every read. It exists so the C
 * guests need no third-party library (see json.h). */

#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const json_node JSON_NULL_NODE = {.type = JSON_NULL};

/* ---- arena ---------------------------------------------------------- */

struct json_chunk {
    json_chunk *next;
    size_t used, cap;
    _Alignas(8) unsigned char data[];
};

void *json_alloc(json_arena *a, size_t n) {
    n = (n + 7) & ~(size_t)7;
    json_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        c = malloc(sizeof(json_chunk) + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void json_arena_free(json_arena *a) {
    while (a->head) {
        json_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- parser --------------------------------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    json_arena *arena;
    char *err;
    size_t errlen;
} parser;

/* Records the first error as "<what> at byte <pos>" (no printf: it would
 * link stdio and with it WASI imports); returns NULL so that callers can
 * `return fail(..)`. */
static json_node *fail(parser *p, const char *what) {
    if (p->err[0] != '\0') return NULL;
    char digits[24];
    size_t nd = 0, v = p->pos;
    do digits[nd++] = (char)('0' + v % 10); while ((v /= 10) > 0);
    size_t n = 0, cap = p->errlen - 1;
    for (const char *s = what; *s && n < cap; s++) p->err[n++] = *s;
    for (const char *s = " at byte "; *s && n < cap; s++) p->err[n++] = *s;
    while (nd > 0 && n < cap) p->err[n++] = digits[--nd];
    p->err[n] = '\0';
    return NULL;
}

static bool failed(parser *p, const char *what) {
    fail(p, what);
    return false;
}

static bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(parser *p) {
    while (p->pos < p->len && is_ws(p->s[p->pos])) p->pos++;
}

static bool is_digit(parser *p) { return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

static json_node *new_node(parser *p, enum json_type type) {
    json_node *n = json_alloc(p->arena, sizeof *n);
    if (!n) return fail(p, "out of memory");
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

static json_node *parse_value(parser *p);

/* The value of the 4 hex digits at s, or -1. */
static int hex4(const unsigned char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* The length of a valid UTF-8 sequence starting at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;        /* no overlong forms */
        if (c == 0xED) hi = 0x9F;        /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;        /* nothing above U+10FFFF */
    } else return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* True when none of the 8 bytes at s needs a closer look: no '"', '\\',
 * control or non-ASCII byte (SWAR: one 64-bit word at a time). */
static bool plain8(const unsigned char *s) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t w;
    memcpy(&w, s, 8);
#define HAS_ZERO_BYTE(x) (((x) - ones) & ~(x) & highs)
    uint64_t special = (w & highs) | ((w - ones * 0x20) & ~w & highs) |
                       HAS_ZERO_BYTE(w ^ (ones * '"')) | HAS_ZERO_BYTE(w ^ (ones * '\\'));
#undef HAS_ZERO_BYTE
    return special == 0;
}

static size_t bad_escape(parser *p, size_t at, const char *what) {
    p->pos = at;
    fail(p, what);
    return (size_t)-1;
}

/* Decodes the escapes of the raw string s[0..len) into buf; returns the
 * decoded length, or (size_t)-1 after recording an error. parse_string
 * checked the other bytes (no control characters, valid UTF-8) already. */
static size_t unescape(parser *p, const unsigned char *s, size_t len, char *buf) {
    size_t at = (size_t)(s - p->s); /* where s starts in the text, for errors */
    size_t n = 0, i = 0;
    while (i < len) {
        if (s[i] != '\\') {
            buf[n++] = (char)s[i++];
            continue;
        }
        size_t esc = i;
        unsigned char c = s[i + 1]; /* in bounds: a backslash never ends the raw text */
        i += 2;
        switch (c) {
        case '"': case '\\': case '/': buf[n++] = (char)c; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            int cp = i + 4 <= len ? hex4(s + i) : -1;
            if (cp < 0) return bad_escape(p, at + esc, "invalid \\u escape");
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return bad_escape(p, at + esc, "lone trailing surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A leading surrogate must be followed by \uDC00-\uDFFF. */
                int lo = i + 6 <= len && s[i] == '\\' && s[i + 1] == 'u' ? hex4(s + i + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return bad_escape(p, at + esc, "lone leading surrogate");
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(buf + n, (uint32_t)cp);
            break;
        }
        default: return bad_escape(p, at + esc, "invalid escape");
        }
    }
    return n;
}

/* The string starting at the opening quote. One pass finds its end and
 * checks the raw bytes; a string without escapes is then used in place
 * (the text outlives the tree), one with escapes is decoded into the
 * arena (never longer than the raw text). */
static bool parse_string(parser *p, json_str *out) {
    const unsigned char *s = p->s;
    size_t len = p->len, start = p->pos + 1, i = start;
    bool escaped = false;
    for (;;) {
        while (i + 8 <= len && plain8(s + i)) i += 8;
        if (i >= len) {
            p->pos = len;
            return failed(p, "EOF while parsing a string");
        }
        unsigned char c = s[i];
        if (c == '"') break;
        if (c == '\\') {
            escaped = true;
            i += 2; /* the escaped byte is checked by unescape */
        } else if (c < 0x20) {
            p->pos = i;
            return failed(p, "control character in string");
        } else if (c >= 0x80) {
            size_t n = utf8_len(s + i, len - i);
            if (n == 0) {
                p->pos = i;
                return failed(p, "invalid UTF-8 in string");
            }
            i += n;
        } else {
            i++;
        }
    }
    p->pos = i + 1; /* past the closing quote */
    if (!escaped) {
        *out = (json_str){(const char *)s + start, i - start};
        return true;
    }
    char *buf = json_alloc(p->arena, i - start + 1);
    if (!buf) return failed(p, "out of memory");
    size_t n = unescape(p, s + start, i - start, buf);
    if (n == (size_t)-1) return false;
    *out = (json_str){buf, n};
    return true;
}

static json_node *parse_number(parser *p) {
    size_t start = p->pos;
    if (p->s[p->pos] == '-') p->pos++;
    if (!is_digit(p)) return fail(p, "invalid number");
    if (p->s[p->pos] == '0') p->pos++;
    else while (is_digit(p)) p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (!is_digit(p)) return fail(p, "invalid number");
        while (is_digit(p)) p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (!is_digit(p)) return fail(p, "invalid number");
        while (is_digit(p)) p->pos++;
    }
    /* strtod needs a terminated copy. */
    size_t len = p->pos - start;
    char *text = json_alloc(p->arena, len + 1);
    if (!text) return fail(p, "out of memory");
    memcpy(text, p->s + start, len);
    text[len] = '\0';
    json_node *n = new_node(p, JSON_NUMBER);
    if (!n) return NULL;
    n->num = strtod(text, NULL);
    if (isinf(n->num)) {
        p->pos = start;
        return fail(p, "number out of range");
    }
    return n;
}

static json_node *parse_literal(parser *p, const char *word, enum json_type type) {
    size_t len = strlen(word);
    if (p->len - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
        return fail(p, "expected value");
    p->pos += len;
    return new_node(p, type);
}

static void append(json_node *parent, json_node *child) {
    if (parent->last) parent->last->next = child;
    else parent->first = child;
    parent->last = child;
    parent->count++;
}

/* Arrays and objects: `close` is ']' or '}'. */
static json_node *parse_container(parser *p, enum json_type type, unsigned char close) {
    if (++p->depth > JSON_DEPTH_MAX) return fail(p, "recursion limit exceeded");
    p->pos++; /* the opening bracket */
    json_node *node = new_node(p, type);
    if (!node) return NULL;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return node;
    }
    for (;;) {
        json_str key = {0};
        if (type == JSON_OBJECT) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "key must be a string");
            if (!parse_string(p, &key)) return NULL;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected `:`");
            p->pos++;
        }
        json_node *child = parse_value(p);
        if (!child) return NULL;
        child->key = key;
        append(node, child);
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "EOF while parsing a list or object");
        unsigned char c = p->s[p->pos++];
        if (c == close) break;
        if (c != ',') {
            p->pos--;
            return fail(p, type == JSON_OBJECT ? "expected `,` or `}`" : "expected `,` or `]`");
        }
    }
    p->depth--;
    return node;
}

static json_node *parse_value(parser *p) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "EOF while parsing a value");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, JSON_OBJECT, '}');
    case '[': return parse_container(p, JSON_ARRAY, ']');
    case 't': return parse_literal(p, "true", JSON_TRUE);
    case 'f': return parse_literal(p, "false", JSON_FALSE);
    case 'n': return parse_literal(p, "null", JSON_NULL);
    case '"': {
        json_node *n = new_node(p, JSON_STRING);
        return n && parse_string(p, &n->str) ? n : NULL;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
        return fail(p, "expected value");
    }
}

const json_node *json_parse(json_arena *a, const char *text, size_t len, char *err, size_t errlen) {
    parser p = {(const unsigned char *)text, len, 0, 0, a, err, errlen};
    err[0] = '\0';
    json_node *v = parse_value(&p);
    if (!v) return NULL;
    skip_ws(&p);
    if (p.pos != p.len) return fail(&p, "trailing characters");
    return v;
}

bool json_is_blank(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!is_ws((unsigned char)text[i])) return false;
    return true;
}

/* ---- queries -------------------------------------------------------- */

static bool same_str(json_str a, const char *b, size_t len) {
    return a.len == len && memcmp(a.ptr, b, len) == 0;
}

const json_node *json_get(const json_node *object, const char *key, size_t len) {
    const json_node *found = NULL;
    for (const json_node *m = object->first; m; m = m->next)
        if (same_str(m->key, key, len)) found = m;
    return found;
}

const json_node *json_at(const json_node *array, size_t index) {
    if (index >= array->count) return NULL;
    const json_node *e = array->first;
    while (index--) e = e->next;
    return e;
}

/* A member that a later duplicate key does not hide. */
static bool is_effective(const json_node *m) {
    for (const json_node *later = m->next; later; later = later->next)
        if (same_str(later->key, m->key.ptr, m->key.len)) return false;
    return true;
}

bool json_equal(const json_node *a, const json_node *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NUMBER: return a->num == b->num;
    case JSON_STRING: return same_str(a->str, b->str.ptr, b->str.len);
    case JSON_ARRAY: {
        if (a->count != b->count) return false;
        for (const json_node *x = a->first, *y = b->first; x; x = x->next, y = y->next)
            if (!json_equal(x, y)) return false;
        return true;
    }
    case JSON_OBJECT: {
        size_t distinct_a = 0, distinct_b = 0;
        for (const json_node *m = a->first; m; m = m->next) {
            if (!is_effective(m)) continue;
            distinct_a++;
            const json_node *other = json_get(b, m->key.ptr, m->key.len);
            if (!other || !json_equal(m, other)) return false;
        }
        for (const json_node *m = b->first; m; m = m->next) distinct_b += is_effective(m);
        return distinct_a == distinct_b;
    }
    default: return true; /* null, true, false */
    }
}
