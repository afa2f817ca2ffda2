/* `filter` in C: keeps a JSON message when a predicate on one of its fields
 * holds and drops it otherwise. It exists to show (and test) that a
 * sluice:handler can be written in C with the same behaviour as the Rust
 * reference in guest-examples/rust/filter; `wit-bindgen c` generates the
 * bindings (handler.h/handler.c) and guest-examples/build-polyglot.sh
 * compiles and wraps it into a component.
 *
 * Config: {"field": "/level", "op": "eq", "value": "error"} where `field` is
 * a JSON pointer and `op` is one of eq, ne, exists, missing, gt, lt
 * (numbers). Non-JSON payloads are a `bad_json` handler error.
 *
 * Memory: the canonical ABI hands the guest ownership of every argument
 * and frees what the guest returns after the call (`cabi_post_*`), so a
 * kept message is moved into the output and a dropped one is freed here.
 * Parsed JSON lives in an arena that is freed after each message, before
 * the message it points into. */

#include "handler.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

enum op { OP_EQ, OP_NE, OP_EXISTS, OP_MISSING, OP_GT, OP_LT };
static const char *const OP_NAMES[] = {"eq", "ne", "exists", "missing", "gt", "lt"};

/* The instance's filter, set by init. */
static struct {
    enum op op;
    size_t ntokens;
    json_str *tokens;        /* the pointer's reference tokens, decoded */
    const json_node *value;  /* lives in `arena` */
    json_arena arena;
} F;

static bool fail(handler_string_t *err, const char *prefix, const char *detail, size_t detail_len) {
    size_t n = strlen(prefix);
    char *s = malloc(n + detail_len + 1);
    if (!s) abort();
    memcpy(s, prefix, n);
    memcpy(s + n, detail, detail_len);
    err->ptr = (uint8_t *)s;
    err->len = n + detail_len;
    return false;
}

/* RFC 6901: split "/a/b~1c" into tokens and decode "~1" then "~0", in the
 * order serde_json uses. Tokens are stored in the config arena. */
static bool split_pointer(const char *p, size_t len) {
    F.ntokens = 0;
    for (size_t i = 0; i < len; i++) F.ntokens += p[i] == '/';
    F.tokens = json_alloc(&F.arena, F.ntokens * sizeof(json_str) + 1);
    if (!F.tokens) return false;
    size_t t = 0;
    for (size_t i = 0; i < len;) {
        size_t start = ++i; /* skip the '/' */
        while (i < len && p[i] != '/') i++;
        char *buf = json_alloc(&F.arena, i - start + 1);
        if (!buf) return false;
        size_t n = 0;
        for (size_t j = start; j < i; j++) { /* pass 1: "~1" -> "/" */
            if (p[j] == '~' && j + 1 < i && p[j + 1] == '1') {
                buf[n++] = '/';
                j++;
            } else {
                buf[n++] = p[j];
            }
        }
        size_t m = 0;
        for (size_t j = 0; j < n; j++) { /* pass 2: "~0" -> "~" */
            buf[m++] = buf[j];
            if (buf[j] == '~' && j + 1 < n && buf[j + 1] == '0') j++;
        }
        F.tokens[t++] = (json_str){buf, m};
    }
    return true;
}

bool exports_handler_init(handler_string_t *config, handler_string_t *err) {
    json_arena_free(&F.arena);
    const char *text = (const char *)config->ptr;
    size_t len = config->len;
    if (json_is_blank(text, len)) {
        text = "{}";
        len = 2;
    }
    /* The tree points into the text it was parsed from: keep a copy. */
    char *copy = json_alloc(&F.arena, len + 1);
    if (!copy) abort();
    memcpy(copy, text, len);
    handler_string_free(config);
    char msg[128];
    const json_node *cfg = json_parse(&F.arena, copy, len, msg, sizeof msg);
    if (!cfg) return fail(err, "invalid handler config: ", msg, strlen(msg));
    if (cfg->type != JSON_OBJECT)
        return fail(err, "invalid handler config: expected a JSON object", "", 0);
    const json_node *field = json_get(cfg, "field", 5);
    const json_node *op = json_get(cfg, "op", 2);
    if (!field) return fail(err, "invalid handler config: missing field `field`", "", 0);
    if (!op) return fail(err, "invalid handler config: missing field `op`", "", 0);
    if (field->type != JSON_STRING)
        return fail(err, "invalid handler config: `field` must be a string", "", 0);
    if (op->type != JSON_STRING)
        return fail(err, "invalid handler config: `op` must be a string", "", 0);
    size_t i = 0;
    while (i < 6 && !(strlen(OP_NAMES[i]) == op->str.len &&
                      memcmp(OP_NAMES[i], op->str.ptr, op->str.len) == 0))
        i++;
    if (i == 6)
        return fail(err,
                    "invalid handler config: unknown op, expected one of eq, ne, exists, missing, "
                    "gt, lt; got ",
                    op->str.ptr, op->str.len);
    F.op = (enum op)i;
    if (field->str.len > 0 && field->str.ptr[0] != '/')
        return fail(err, "field must be a JSON pointer like /a/b, got ", field->str.ptr,
                    field->str.len);
    if (!split_pointer(field->str.ptr, field->str.len)) abort();
    const json_node *value = json_get(cfg, "value", 5);
    F.value = value ? value : &JSON_NULL_NODE;
    return true;
}

/* Array indices as serde_json reads them: "0" or digits without a leading
 * zero, no sign, within range. */
static bool parse_index(json_str t, size_t *out) {
    if (t.len == 0 || (t.ptr[0] == '0' && t.len > 1)) return false;
    size_t v = 0;
    for (size_t i = 0; i < t.len; i++) {
        if (t.ptr[i] < '0' || t.ptr[i] > '9') return false;
        if (v > (SIZE_MAX - 9) / 10) return false;
        v = v * 10 + (size_t)(t.ptr[i] - '0');
    }
    *out = v;
    return true;
}

static const json_node *lookup(const json_node *doc) {
    for (size_t i = 0; doc && i < F.ntokens; i++) {
        json_str t = F.tokens[i];
        size_t index;
        if (doc->type == JSON_ARRAY)
            doc = parse_index(t, &index) ? json_at(doc, index) : NULL;
        else if (doc->type == JSON_OBJECT)
            doc = json_get(doc, t.ptr, t.len);
        else
            doc = NULL;
    }
    return doc;
}

static bool keeps(const json_node *doc) {
    const json_node *found = lookup(doc);
    bool numbers = found && found->type == JSON_NUMBER && F.value->type == JSON_NUMBER;
    switch (F.op) {
    case OP_EQ: return found && json_equal(found, F.value);
    case OP_NE: return !found || !json_equal(found, F.value);
    case OP_EXISTS: return found != NULL;
    case OP_MISSING: return found == NULL;
    case OP_GT: return numbers && found->num > F.value->num;
    case OP_LT: return numbers && found->num < F.value->num;
    }
    return false;
}

/* Takes ownership of `message`: moves it into `ret` or frees it. */
static bool handle_one(handler_message_t *message, handler_list_output_t *ret,
                       handler_handler_error_t *err) {
    json_arena arena = {0};
    char msg[128];
    const json_node *doc = json_parse(&arena, (const char *)message->payload.ptr,
                                      message->payload.len, msg, sizeof msg);
    bool keep = doc && keeps(doc);
    json_arena_free(&arena);
    /* `ret` and `err` may share memory (a result's union): write one. */
    if (!doc) {
        handler_message_free(message);
        handler_string_dup(&err->code, "bad_json");
        handler_string_dup(&err->message, msg);
        return false;
    }
    if (!keep) {
        handler_message_free(message);
        ret->ptr = NULL;
        ret->len = 0;
        return true;
    }
    ret->ptr = malloc(sizeof(handler_output_t));
    if (!ret->ptr) abort();
    ret->ptr[0].topic.is_some = false;
    ret->ptr[0].message = *message;
    ret->len = 1;
    return true;
}

bool exports_handler_handle(handler_message_t *message, handler_list_output_t *ret,
                            handler_handler_error_t *err) {
    return handle_one(message, ret, err);
}

void exports_handler_handle_batch(handler_list_message_t *messages,
                                  handler_list_result_list_output_handler_error_t *ret) {
    ret->len = messages->len;
    ret->ptr = NULL;
    if (messages->len == 0) return;
    ret->ptr = malloc(messages->len * sizeof(*ret->ptr));
    if (!ret->ptr) abort();
    for (size_t i = 0; i < messages->len; i++) {
        handler_result_list_output_handler_error_t *r = &ret->ptr[i];
        r->is_err = !handle_one(&messages->ptr[i], &r->val.ok, &r->val.err);
    }
    free(messages->ptr); /* the elements were moved or freed one by one */
}
