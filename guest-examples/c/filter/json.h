/* A small, strict JSON reader for the C guest examples: RFC 8259 syntax,
 * UTF-8 validated, surrogate pairs checked, nesting bounded, numbers as
 * doubles. It exists because a guest has no package manager to bring a
 * JSON library, and `filter` needs only parse, look up and compare. Every
 * malformed input gives an error message, never a crash. Nodes and decoded
 * strings live in an arena that is freed in one go; strings without
 * escapes point into the parsed text, which must outlive the tree. */

#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Arrays and objects nest at most this deep: serde_json's limit, so the C
 * and Rust filters refuse the same inputs. */
#define JSON_DEPTH_MAX 127

typedef struct {
    const char *ptr;
    size_t len;
} json_str;

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

typedef struct json_node {
    enum json_type type;
    double num;                          /* JSON_NUMBER */
    json_str str;                        /* JSON_STRING: UTF-8, may hold NULs */
    json_str key;                        /* when the node is an object member */
    size_t count;                        /* JSON_ARRAY, JSON_OBJECT: children */
    struct json_node *first, *last, *next; /* children, in document order */
} json_node;

typedef struct json_chunk json_chunk;
typedef struct {
    json_chunk *head;
} json_arena;

extern const json_node JSON_NULL_NODE;

/* Memory from the arena (8-byte aligned), NULL when out of memory. */
void *json_alloc(json_arena *a, size_t n);
void json_arena_free(json_arena *a);

/* Parses exactly one JSON value (surrounded by optional whitespace). On
 * error returns NULL and writes a message into err[0..errlen). */
const json_node *json_parse(json_arena *a, const char *text, size_t len, char *err, size_t errlen);

/* True when `text` is empty or JSON whitespace only. */
bool json_is_blank(const char *text, size_t len);

/* The value of the last member named `key` (duplicate keys: last wins, as
 * in serde_json, JavaScript and Python), or NULL. */
const json_node *json_get(const json_node *object, const char *key, size_t len);

/* Element `index` of an array, or NULL. */
const json_node *json_at(const json_node *array, size_t index);

/* Deep equality: numbers by value, object members in any order. */
bool json_equal(const json_node *a, const json_node *b);

#endif
