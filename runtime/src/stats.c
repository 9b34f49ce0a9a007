/* Statistics features (windowed counts, smoothed rates, ranks) as of each
 * sample's own time, impression labels (click / pay attribution) and the CSV
 * output of both. See mtl/stats.h and docs/features_engineering.md. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "mtl/id_map.h"
#include "mtl/stats.h"

#define FN "mtl.stats.compute"

/* ---- key -> value maps: the core's id map (mtl/id_map.h) ------------------- */
/* An empty map with room for `expected` keys before it grows. */
static int map_init(mtl_id_map *m, uint64_t expected) { return mtl_id_map_init(m, (int64_t)(2 * expected)); }

/* The value stored for key, or -1. */
static inline int64_t map_value(const mtl_id_map *m, uint64_t key) {
  const mtl_id_entry *e = mtl_id_map_find(m, (int64_t)key);
  return e ? e->val : -1;
}

/* The value of key; when absent, stores value and returns it (*added = 1).
 * Returns -1 when memory runs out. */
static inline int64_t map_get_or_add(mtl_id_map *m, uint64_t key, uint32_t value, int *added) {
  bool is_new;
  mtl_id_entry *e = mtl_id_map_find_or_insert(m, (int64_t)key, &is_new);
  if (!e) return -1;
  *added = is_new;
  if (is_new) e->val = value;
  return e->val;
}

/* Stores value under key (replacing any). Returns -1 when memory runs out. */
static inline int map_put(mtl_id_map *m, uint64_t key, uint32_t value) {
  bool is_new;
  mtl_id_entry *e = mtl_id_map_find_or_insert(m, (int64_t)key, &is_new);
  if (!e) return -1;
  e->val = value;
  return 0;
}

/* ---- a stable sort of positions 0..n-1 by an int64 key ------------------- */
/* order[i] = the position of the i-th smallest key (ties keep input order).
 * rank2 (may be NULL) breaks ties between equal keys before input order. */
static uint32_t *sort_by_time(const int64_t *key, const uint8_t *rank2, int64_t n) {
  uint32_t *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
  if (!a) return NULL;
  bool sorted = true;
  for (int64_t i = 0; i < n; i++) {
    a[i] = (uint32_t)i;
    if (i > 0 && (key[i] < key[i - 1] || (key[i] == key[i - 1] && rank2 && rank2[i] < rank2[i - 1]))) sorted = false;
  }
  if (sorted) return a;
  uint32_t *b = malloc((size_t)n * sizeof *b);
  if (!b) {
    free(a);
    return NULL;
  }
  for (int64_t width = 1; width < n; width *= 2) { /* bottom-up merge sort */
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
      int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        uint32_t x = a[i], y = a[j];
        bool take_right = key[y] < key[x] || (key[y] == key[x] && rank2 && rank2[y] < rank2[x]);
        b[k++] = take_right ? a[j++] : a[i++];
      }
      while (i < mid) b[k++] = a[i++];
      while (j < hi) b[k++] = a[j++];
    }
    uint32_t *t = a;
    a = b;
    b = t;
  }
  free(b);
  return a;
}

static uint64_t pair_key(int64_t a, int64_t b) {
  int64_t v[2] = {a, b};
  return XXH3_64bits(v, sizeof v);
}

/* ---- statistics ------------------------------------------------------------ */
/* The counts of one object: per key, ntu event types x nwu windows. */
typedef struct objstate {
  mtl_id_map map;
  int32_t *counts; /* nslots * stride */
  uint64_t nslots, capslots;
  int stride, ntu, nwu;
  int tmap[MTL_STATS_MAX_EVENT_TYPES]; /* event type -> compact index, or -1 */
  int wmap[MTL_STATS_MAX_WINDOWS];     /* window -> compact index, or -1 */
} objstate;

/* Ranks of entities within groups by one event type in one window. Members
 * of a group sit in `members` by descending count; start[c] is the number of
 * members with a count above c, so a member with count c ranks start[c] + 1. */
typedef struct rgroup {
  uint32_t *members;
  uint32_t n, cap;
  int32_t *start;
  uint32_t nstart, capstart;
} rgroup;

typedef struct rmember {
  int32_t count;
  uint32_t pos, group;
} rmember;

typedef struct rankstate {
  int entity, group, window, event;
  mtl_id_map groups, members;
  rgroup *g;
  uint32_t ng, capg;
  rmember *m;
  uint32_t nm, capm;
} rankstate;

/* The ids and table rows an object key is computed from. */
typedef struct keyctx {
  int64_t user, item, trigger;
  int64_t urow, irow, trow; /* -1: not in the table */
} keyctx;

static bool object_key(const mtl_stats_options *o, const mtl_stats_object *ob, const keyctx *c, uint64_t *key) {
  int64_t v[MTL_STATS_MAX_FIELDS];
  for (int f = 0; f < ob->nfields; f++) {
    const mtl_stats_field *fd = &ob->fields[f];
    int64_t x;
    switch (fd->kind) {
    case MTL_STATS_USER: x = c->user; break;
    case MTL_STATS_ITEM: x = c->item; break;
    case MTL_STATS_TRIGGER: x = c->trigger; break;
    case MTL_STATS_USER_PROP:
      if (c->urow < 0) return false;
      x = o->users.props[fd->prop][c->urow];
      break;
    case MTL_STATS_ITEM_PROP:
      if (c->irow < 0) return false;
      x = o->items.props[fd->prop][c->irow];
      break;
    case MTL_STATS_TRIGGER_PROP:
      if (c->trow < 0) return false;
      x = o->items.props[fd->prop][c->trow];
      break;
    default: return false;
    }
    if (x == MTL_STATS_NONE) return false;
    v[f] = x;
  }
  *key = ob->nfields == 1 ? (uint64_t)v[0] : XXH3_64bits(v, (size_t)ob->nfields * sizeof v[0]);
  return true;
}

static int64_t table_row(const mtl_id_map *m, int64_t id) {
  if (id == MTL_STATS_NONE) return -1;
  return map_value(m, (uint64_t)id);
}

static int oom(void) { return mtl_error(FN ": out of memory"); }

static int grow_array(void **p, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) return 0;
  uint64_t c = *cap ? *cap : 4;
  while (c < need) c *= 2;
  if (c > UINT32_MAX) return -1;
  void *q = realloc(*p, (size_t)c * elem);
  if (!q) return -1;
  *p = q;
  *cap = (uint32_t)c;
  return 0;
}

/* The member index of (group key, entity key), added with count 0 when new. */
static int64_t rank_member(rankstate *r, uint64_t gkey, uint64_t ekey) {
  int added;
  int64_t gi = map_get_or_add(&r->groups, gkey, r->ng, &added);
  if (gi < 0) return oom();
  if (added) {
    if (grow_array((void **)&r->g, &r->capg, r->ng + 1, sizeof *r->g) < 0) return oom();
    memset(&r->g[r->ng], 0, sizeof r->g[0]);
    r->ng++;
  }
  rgroup *g = &r->g[gi];
  int64_t mi = map_get_or_add(&r->members, pair_key((int64_t)gkey, (int64_t)ekey), r->nm, &added);
  if (mi < 0) return oom();
  if (added) {
    if (grow_array((void **)&r->m, &r->capm, r->nm + 1, sizeof *r->m) < 0) return oom();
    if (grow_array((void **)&g->members, &g->cap, g->n + 1, sizeof *g->members) < 0) return oom();
    r->m[r->nm] = (rmember){.count = 0, .pos = g->n, .group = (uint32_t)gi};
    g->members[g->n++] = r->nm; /* count 0: the end of the descending order */
    r->nm++;
  }
  return mi;
}

/* Adds delta (+1 / -1) to member mi's count, keeping its group in order. */
static int rank_step(rankstate *r, uint32_t mi, int delta) {
  rmember *m = &r->m[mi];
  rgroup *g = &r->g[m->group];
  int32_t c = m->count;
  uint32_t j;
  if (delta > 0) {
    if ((uint32_t)c >= g->nstart) { /* start[c] is needed: absent entries are 0 */
      if (grow_array((void **)&g->start, &g->capstart, (uint32_t)c + 1, sizeof *g->start) < 0) return oom();
      memset(g->start + g->nstart, 0, ((uint32_t)c + 1 - g->nstart) * sizeof *g->start);
      g->nstart = (uint32_t)c + 1;
    }
    j = (uint32_t)g->start[c]; /* the first member with count c */
    g->start[c]++;
  } else {
    if (c <= 0) return mtl_error(FN ": internal error: a rank count would fall below zero");
    j = (uint32_t)g->start[c - 1] - 1; /* the last member with count c */
    g->start[c - 1]--;
  }
  uint32_t other = g->members[j];
  g->members[j] = mi;
  g->members[m->pos] = other;
  r->m[other].pos = m->pos;
  m->pos = j;
  m->count = c + delta;
  return 0;
}

static double rank_query(const rankstate *r, uint64_t gkey, uint64_t ekey) {
  int64_t gi = map_value(&r->groups, gkey);
  if (gi < 0) return 1;
  const rgroup *g = &r->g[gi];
  int64_t mi = map_value(&r->members, pair_key((int64_t)gkey, (int64_t)ekey));
  int32_t c = mi < 0 ? 0 : r->m[mi].count;
  int32_t above = (uint32_t)c < g->nstart ? g->start[c] : 0;
  return (double)above + 1;
}

static void rank_free(rankstate *r) {
  for (uint32_t i = 0; i < r->ng; i++) {
    free(r->g[i].members);
    free(r->g[i].start);
  }
  free(r->g);
  free(r->m);
  mtl_id_map_free(&r->groups);
  mtl_id_map_free(&r->members);
}

static int check_table(const char *what, const mtl_stats_table *t, mtl_id_map *rows) {
  if (t->n < 0 || t->n > MTL_STATS_MAX_ROWS)
    return mtl_error(FN ": %s: %" PRId64 " rows (at most %" PRId64 ")", what, t->n, MTL_STATS_MAX_ROWS);
  if (t->nprops < 0 || t->nprops > MTL_STATS_MAX_PROPS)
    return mtl_error(FN ": %s: %d properties (at most %d)", what, t->nprops, MTL_STATS_MAX_PROPS);
  if (t->n > 0 && (!t->id || (t->nprops > 0 && !t->props))) return mtl_error(FN ": %s: missing columns", what);
  for (int p = 0; p < t->nprops; p++)
    if (t->n > 0 && !t->props[p]) return mtl_error(FN ": %s: property %d has no values", what, p + 1);
  if (map_init(rows, (uint64_t)t->n) < 0) return oom();
  for (int64_t i = 0; i < t->n; i++) {
    if (t->id[i] == MTL_STATS_NONE) return mtl_error(FN ": %s: row %" PRId64 " has the missing id", what, i + 1);
    int added;
    int64_t v = map_get_or_add(rows, (uint64_t)t->id[i], (uint32_t)i, &added);
    if (v < 0) return oom();
    if (!added)
      return mtl_error(FN ": %s: id %" PRId64 " appears twice (rows %" PRId64 " and %" PRId64 ")", what, t->id[i],
                       v + 1, i + 1);
  }
  return 0;
}

static int check_times(const char *fn, const char *what, const int64_t *t, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (t[i] > MTL_STATS_MAX_TIME || t[i] < -MTL_STATS_MAX_TIME)
      return mtl_error("%s: %s %" PRId64 ": time %" PRId64 " is outside -2^62..2^62", fn, what, i + 1, t[i]);
  return 0;
}

static int check_options(const mtl_stats_options *o) {
  if (o->nevents < 0 || o->nevents > MTL_STATS_MAX_ROWS)
    return mtl_error(FN ": %" PRId64 " events (at most %" PRId64 ")", o->nevents, MTL_STATS_MAX_ROWS);
  if (o->nsamples < 0 || o->nsamples > MTL_STATS_MAX_ROWS)
    return mtl_error(FN ": %" PRId64 " samples (at most %" PRId64 ")", o->nsamples, MTL_STATS_MAX_ROWS);
  if (o->nevents > 0 && (!o->event_time || !o->event_user || !o->event_item || !o->event_type))
    return mtl_error(FN ": the events need times, users, items and types");
  if (o->nsamples > 0 && (!o->sample_time || !o->sample_user || !o->sample_item))
    return mtl_error(FN ": the samples need times, users and items");
  if (o->ntypes < 1 || o->ntypes > MTL_STATS_MAX_EVENT_TYPES || !o->type_codes)
    return mtl_error(FN ": expected 1 to %d event types, got %d", MTL_STATS_MAX_EVENT_TYPES, o->ntypes);
  for (int a = 0; a < o->ntypes; a++)
    for (int b = 0; b < a; b++)
      if (o->type_codes[a] == o->type_codes[b])
        return mtl_error(FN ": event types %d and %d have the same code", b + 1, a + 1);
  if (o->nwindows < 1 || o->nwindows > MTL_STATS_MAX_WINDOWS || !o->windows)
    return mtl_error(FN ": expected 1 to %d windows, got %d", MTL_STATS_MAX_WINDOWS, o->nwindows);
  for (int w = 0; w < o->nwindows; w++)
    if (o->windows[w] <= 0 || o->windows[w] > MTL_STATS_MAX_TIME)
      return mtl_error(FN ": window %d has length %" PRId64 " (expected 1..2^62)", w + 1, o->windows[w]);
  if (o->nobjects < 0 || o->nobjects > MTL_STATS_MAX_OBJECTS || (o->nobjects > 0 && !o->objects))
    return mtl_error(FN ": expected 0 to %d objects, got %d", MTL_STATS_MAX_OBJECTS, o->nobjects);
  for (int i = 0; i < o->nobjects; i++) {
    const mtl_stats_object *ob = &o->objects[i];
    if (ob->nfields < 1 || ob->nfields > MTL_STATS_MAX_FIELDS)
      return mtl_error(FN ": object %d has %d fields (expected 1 to %d)", i + 1, ob->nfields, MTL_STATS_MAX_FIELDS);
    for (int f = 0; f < ob->nfields; f++) {
      const mtl_stats_field *fd = &ob->fields[f];
      int nprops = fd->kind == MTL_STATS_USER_PROP ? o->users.nprops : o->items.nprops;
      switch (fd->kind) {
      case MTL_STATS_USER:
      case MTL_STATS_ITEM:
      case MTL_STATS_TRIGGER: break;
      case MTL_STATS_USER_PROP:
      case MTL_STATS_ITEM_PROP:
      case MTL_STATS_TRIGGER_PROP:
        if (fd->prop < 0 || fd->prop >= nprops)
          return mtl_error(FN ": object %d, field %d: property %d does not exist (the %s table has %d)", i + 1, f + 1,
                           fd->prop + 1, fd->kind == MTL_STATS_USER_PROP ? "user" : "item", nprops);
        break;
      default: return mtl_error(FN ": object %d, field %d: unknown field kind %d", i + 1, f + 1, (int)fd->kind);
      }
    }
  }
  if (o->nspecs < 0 || o->nspecs > MTL_STATS_MAX_STATISTICS || (o->nspecs > 0 && !o->specs))
    return mtl_error(FN ": expected 0 to %d statistics, got %d", MTL_STATS_MAX_STATISTICS, o->nspecs);
  for (int j = 0; j < o->nspecs; j++) {
    const mtl_stats_spec *s = &o->specs[j];
    if (s->kind != MTL_STATS_COUNT && s->kind != MTL_STATS_RATE && s->kind != MTL_STATS_RANK)
      return mtl_error(FN ": statistic %d: unknown kind %d", j + 1, (int)s->kind);
    if (s->object < 0 || s->object >= o->nobjects)
      return mtl_error(FN ": statistic %d: object %d does not exist (%d objects)", j + 1, s->object + 1, o->nobjects);
    if (s->kind == MTL_STATS_RANK && (s->group < 0 || s->group >= o->nobjects))
      return mtl_error(FN ": statistic %d: group %d does not exist (%d objects)", j + 1, s->group + 1, o->nobjects);
    if (s->window < 0 || s->window >= o->nwindows)
      return mtl_error(FN ": statistic %d: window %d does not exist (%d windows)", j + 1, s->window + 1, o->nwindows);
    if (s->event < 0 || s->event >= o->ntypes)
      return mtl_error(FN ": statistic %d: event type %d does not exist (%d types)", j + 1, s->event + 1, o->ntypes);
    if (s->kind == MTL_STATS_RATE) {
      if (s->denominator < 0 || s->denominator >= o->ntypes)
        return mtl_error(FN ": statistic %d: event type %d does not exist (%d types)", j + 1, s->denominator + 1,
                         o->ntypes);
      if (!(s->alpha >= 0 && s->beta >= 0 && isfinite(s->alpha) && isfinite(s->beta)))
        return mtl_error(FN ": statistic %d: the prior needs finite alpha >= 0 and beta >= 0, got %g and %g", j + 1,
                         s->alpha, s->beta);
    }
  }
  if (check_times(FN, "event", o->event_time, o->nevents) < 0) return -1;
  return check_times(FN, "sample", o->sample_time, o->nsamples);
}

typedef struct cstate {
  const mtl_stats_options *o;
  mtl_id_map user_rows, item_rows;
  int8_t *etype;
  objstate *obj;
  rankstate *rank;
  int nrank;
  int *spec_rank; /* spec -> rank state */
  bool need_urow, need_irow, need_trow;
  /* per event: the count slot of each object and the member of each rank
   * state it entered (NOT_COUNTED: none), so leaving needs no hashing;
   * NULL when too big (then keys are computed again) */
  uint32_t *eslot;
  int eslot_stride;
} cstate;

#define NOT_COUNTED UINT32_MAX

static void event_ctx(const cstate *cs, int64_t e, keyctx *c) {
  const mtl_stats_options *o = cs->o;
  c->user = o->event_user[e];
  c->item = o->event_item[e];
  c->trigger = o->event_trigger ? o->event_trigger[e] : MTL_STATS_NONE;
  c->urow = cs->need_urow ? table_row(&cs->user_rows, c->user) : -1;
  c->irow = cs->need_irow ? table_row(&cs->item_rows, c->item) : -1;
  c->trow = cs->need_trow ? table_row(&cs->item_rows, c->trigger) : -1;
}

/* Event e enters every window: counts and rank members, remembered in eslot. */
static int add_event(cstate *cs, int64_t e) {
  int k = cs->etype[e];
  if (k < 0) return 0;
  const mtl_stats_options *o = cs->o;
  uint32_t *cache = cs->eslot ? cs->eslot + (uint64_t)e * (uint64_t)cs->eslot_stride : NULL;
  keyctx c;
  event_ctx(cs, e, &c);
  for (int i = 0; i < o->nobjects; i++) {
    objstate *st = &cs->obj[i];
    int tc = st->tmap[k];
    uint64_t key;
    if (cache) cache[i] = NOT_COUNTED;
    if (tc < 0 || !object_key(o, &o->objects[i], &c, &key)) continue;
    int added;
    if (st->nslots >= UINT32_MAX - 1) return mtl_error(FN ": too many distinct keys for object %d", i + 1);
    int64_t slot = map_get_or_add(&st->map, key, (uint32_t)st->nslots, &added);
    if (slot < 0) return oom();
    if (added) {
      if (st->nslots == st->capslots) {
        uint64_t cap = st->capslots ? st->capslots * 2 : 1024;
        int32_t *q = realloc(st->counts, (size_t)cap * (size_t)st->stride * sizeof *q);
        if (!q) return oom();
        st->counts = q;
        st->capslots = cap;
      }
      memset(st->counts + st->nslots * (uint64_t)st->stride, 0, (size_t)st->stride * sizeof *st->counts);
      st->nslots++;
    }
    int32_t *row = st->counts + (uint64_t)slot * (uint64_t)st->stride;
    for (int wc = 0; wc < st->nwu; wc++) row[wc * st->ntu + tc]++;
    if (cache) cache[i] = (uint32_t)slot;
  }
  for (int r = 0; r < cs->nrank; r++) {
    rankstate *rs = &cs->rank[r];
    uint64_t ekey, gkey;
    if (cache) cache[o->nobjects + r] = NOT_COUNTED;
    if (rs->event != k || !object_key(o, &o->objects[rs->entity], &c, &ekey) ||
        !object_key(o, &o->objects[rs->group], &c, &gkey))
      continue;
    int64_t mi = rank_member(rs, gkey, ekey);
    if (mi < 0 || rank_step(rs, (uint32_t)mi, +1) < 0) return -1;
    if (cache) cache[o->nobjects + r] = (uint32_t)mi;
  }
  return 0;
}

/* Event e leaves window w. */
static int remove_event(cstate *cs, int64_t e, int w) {
  int k = cs->etype[e];
  if (k < 0) return 0;
  const mtl_stats_options *o = cs->o;
  const uint32_t *cache = cs->eslot ? cs->eslot + (uint64_t)e * (uint64_t)cs->eslot_stride : NULL;
  keyctx c;
  if (!cache) event_ctx(cs, e, &c);
  for (int i = 0; i < o->nobjects; i++) {
    objstate *st = &cs->obj[i];
    int tc = st->tmap[k];
    if (tc < 0 || st->wmap[w] < 0) continue;
    int64_t slot;
    if (cache) {
      if (cache[i] == NOT_COUNTED) continue;
      slot = cache[i];
    } else {
      uint64_t key;
      if (!object_key(o, &o->objects[i], &c, &key)) continue;
      slot = map_value(&st->map, key);
      if (slot < 0) return mtl_error(FN ": internal error: a leaving event was never counted");
    }
    st->counts[(uint64_t)slot * (uint64_t)st->stride + (uint64_t)(st->wmap[w] * st->ntu + tc)]--;
  }
  for (int r = 0; r < cs->nrank; r++) {
    rankstate *rs = &cs->rank[r];
    if (rs->event != k || rs->window != w) continue;
    int64_t mi;
    if (cache) {
      if (cache[o->nobjects + r] == NOT_COUNTED) continue;
      mi = cache[o->nobjects + r];
    } else {
      uint64_t ekey, gkey;
      if (!object_key(o, &o->objects[rs->entity], &c, &ekey) || !object_key(o, &o->objects[rs->group], &c, &gkey))
        continue;
      mi = map_value(&rs->members, pair_key((int64_t)gkey, (int64_t)ekey));
      if (mi < 0) return mtl_error(FN ": internal error: a leaving event was never ranked");
    }
    if (rank_step(rs, (uint32_t)mi, -1) < 0) return -1;
  }
  return 0;
}

static void free_state(cstate *cs) {
  const mtl_stats_options *o = cs->o;
  mtl_id_map_free(&cs->user_rows);
  mtl_id_map_free(&cs->item_rows);
  free(cs->etype);
  if (cs->obj)
    for (int i = 0; i < o->nobjects; i++) {
      mtl_id_map_free(&cs->obj[i].map);
      free(cs->obj[i].counts);
    }
  free(cs->obj);
  if (cs->rank)
    for (int r = 0; r < cs->nrank; r++) rank_free(&cs->rank[r]);
  free(cs->rank);
  free(cs->spec_rank);
  free(cs->eslot);
}

static bool uses(const mtl_stats_object *ob, mtl_stats_field_kind kind) {
  for (int f = 0; f < ob->nfields; f++)
    if (ob->fields[f].kind == kind) return true;
  return false;
}

static int setup_state(cstate *cs) {
  const mtl_stats_options *o = cs->o;
  if (check_table("users", &o->users, &cs->user_rows) < 0 || check_table("items", &o->items, &cs->item_rows) < 0)
    return -1;
  for (int i = 0; i < o->nobjects; i++) {
    cs->need_urow |= uses(&o->objects[i], MTL_STATS_USER_PROP);
    cs->need_irow |= uses(&o->objects[i], MTL_STATS_ITEM_PROP);
    cs->need_trow |= uses(&o->objects[i], MTL_STATS_TRIGGER_PROP);
  }
  cs->etype = malloc((size_t)(o->nevents > 0 ? o->nevents : 1));
  cs->obj = calloc((size_t)(o->nobjects > 0 ? o->nobjects : 1), sizeof *cs->obj);
  cs->rank = calloc((size_t)(o->nspecs > 0 ? o->nspecs : 1), sizeof *cs->rank);
  cs->spec_rank = malloc((size_t)(o->nspecs > 0 ? o->nspecs : 1) * sizeof *cs->spec_rank);
  if (!cs->etype || !cs->obj || !cs->rank || !cs->spec_rank) return oom();
  for (int64_t e = 0; e < o->nevents; e++) {
    int k = -1;
    for (int t = 0; t < o->ntypes; t++)
      if (o->event_type[e] == o->type_codes[t]) k = t;
    cs->etype[e] = (int8_t)k;
  }
  for (int i = 0; i < o->nobjects; i++) {
    objstate *st = &cs->obj[i];
    for (int t = 0; t < MTL_STATS_MAX_EVENT_TYPES; t++) st->tmap[t] = -1;
    for (int w = 0; w < MTL_STATS_MAX_WINDOWS; w++) st->wmap[w] = -1;
  }
  for (int j = 0; j < o->nspecs; j++) {
    const mtl_stats_spec *s = &o->specs[j];
    cs->spec_rank[j] = -1;
    if (s->kind == MTL_STATS_RANK) {
      int r = 0;
      while (r < cs->nrank && !(cs->rank[r].entity == s->object && cs->rank[r].group == s->group &&
                                cs->rank[r].window == s->window && cs->rank[r].event == s->event))
        r++;
      if (r == cs->nrank) {
        rankstate *rs = &cs->rank[cs->nrank++];
        rs->entity = s->object;
        rs->group = s->group;
        rs->window = s->window;
        rs->event = s->event;
        if (map_init(&rs->groups, 64) < 0 || map_init(&rs->members, 1024) < 0) return oom();
      }
      cs->spec_rank[j] = r;
      continue;
    }
    objstate *st = &cs->obj[s->object];
    if (st->tmap[s->event] < 0) st->tmap[s->event] = st->ntu++;
    if (s->kind == MTL_STATS_RATE && st->tmap[s->denominator] < 0) st->tmap[s->denominator] = st->ntu++;
    if (st->wmap[s->window] < 0) st->wmap[s->window] = st->nwu++;
  }
  cs->eslot_stride = o->nobjects + cs->nrank;
  uint64_t cache_bytes = (uint64_t)o->nevents * (uint64_t)cs->eslot_stride * sizeof *cs->eslot;
  uint64_t cache_max = o->cache_bytes_max ? (uint64_t)o->cache_bytes_max : ((uint64_t)2 << 30);
  if (cache_bytes > 0 && cache_bytes <= cache_max) cs->eslot = malloc((size_t)cache_bytes); /* NULL: no cache */
  for (int i = 0; i < o->nobjects; i++) {
    objstate *st = &cs->obj[i];
    st->stride = st->ntu * st->nwu;
    if (st->stride > 0 && map_init(&st->map, 1024) < 0) return oom();
    if (st->stride == 0)
      for (int t = 0; t < MTL_STATS_MAX_EVENT_TYPES; t++) st->tmap[t] = -1; /* nothing to count */
  }
  return 0;
}

int mtl_stats_compute(const mtl_stats_options *o, float *out, mtl_stats_report *report) {
  if (!o) return mtl_error(FN ": no options");
  if (check_options(o) < 0) return -1;
  if (o->nsamples > 0 && o->nspecs > 0 && !out) return mtl_error(FN ": no output buffer");
  cstate cs;
  memset(&cs, 0, sizeof cs);
  cs.o = o;
  uint32_t *eorder = NULL, *sorder = NULL;
  int64_t *slots = NULL;
  int rc = -1;
  if (setup_state(&cs) < 0) goto done;
  eorder = sort_by_time(o->event_time, NULL, o->nevents);
  sorder = sort_by_time(o->sample_time, NULL, o->nsamples);
  slots = malloc((size_t)(o->nobjects > 0 ? o->nobjects : 1) * sizeof *slots);
  if (!eorder || !sorder || !slots) {
    oom();
    goto done;
  }
  int64_t added = 0, removed[MTL_STATS_MAX_WINDOWS] = {0};
  for (int64_t si = 0; si < o->nsamples; si++) {
    int64_t s = sorder[si], t = o->sample_time[s];
    while (added < o->nevents && o->event_time[eorder[added]] < t) {
      if (add_event(&cs, eorder[added]) < 0) goto done;
      added++;
    }
    for (int w = 0; w < o->nwindows; w++) {
      int64_t from = t - o->windows[w]; /* events before `from` have left the window */
      while (removed[w] < added && o->event_time[eorder[removed[w]]] < from) {
        if (remove_event(&cs, eorder[removed[w]], w) < 0) goto done;
        removed[w]++;
      }
    }
    keyctx c;
    c.user = o->sample_user[s];
    c.item = o->sample_item[s];
    c.trigger = o->sample_trigger ? o->sample_trigger[s] : MTL_STATS_NONE;
    c.urow = cs.need_urow ? table_row(&cs.user_rows, c.user) : -1;
    c.irow = cs.need_irow ? table_row(&cs.item_rows, c.item) : -1;
    c.trow = cs.need_trow ? table_row(&cs.item_rows, c.trigger) : -1;
    for (int i = 0; i < o->nobjects; i++) {
      uint64_t key;
      slots[i] = cs.obj[i].stride > 0 && object_key(o, &o->objects[i], &c, &key) ? map_value(&cs.obj[i].map, key) : -1;
    }
    float *row = out + s * o->nspecs;
    for (int j = 0; j < o->nspecs; j++) {
      const mtl_stats_spec *sp = &o->specs[j];
      if (sp->kind == MTL_STATS_RANK) {
        const rankstate *rs = &cs.rank[cs.spec_rank[j]];
        uint64_t ekey, gkey;
        bool known = object_key(o, &o->objects[rs->entity], &c, &ekey) && object_key(o, &o->objects[rs->group], &c, &gkey);
        row[j] = known ? (float)rank_query(rs, gkey, ekey) : 1.0f;
        continue;
      }
      const objstate *st = &cs.obj[sp->object];
      const int32_t *cnt = slots[sp->object] >= 0 ? st->counts + (uint64_t)slots[sp->object] * (uint64_t)st->stride : NULL;
      int base = st->wmap[sp->window] * st->ntu;
      double k = cnt ? cnt[base + st->tmap[sp->event]] : 0;
      if (sp->kind == MTL_STATS_COUNT) {
        row[j] = (float)k;
      } else {
        double n = cnt ? cnt[base + st->tmap[sp->denominator]] : 0;
        double d = n + sp->alpha + sp->beta;
        row[j] = d > 0 ? (float)((k + sp->alpha) / d) : 0.0f;
      }
    }
  }
  if (report) {
    report->events_used = 0;
    report->events_unknown_type = 0;
    for (int64_t e = 0; e < o->nevents; e++) {
      if (cs.etype[e] >= 0)
        report->events_used++;
      else
        report->events_unknown_type++;
    }
  }
  rc = 0;
done:
  free(eorder);
  free(sorder);
  free(slots);
  free_state(&cs);
  return rc;
}

/* ---- impression labels ------------------------------------------------------ */
#undef FN
#define FN "mtl.samples.label"

int mtl_samples_label(const mtl_samples_label_options *o, int64_t *is_click, int64_t *is_pay, int64_t *click_time,
                      mtl_samples_label_report *report) {
  if (!o) return mtl_error(FN ": no options");
  if (o->nimpressions < 0 || o->nimpressions > MTL_STATS_MAX_ROWS)
    return mtl_error(FN ": %" PRId64 " impressions (at most %" PRId64 ")", o->nimpressions, MTL_STATS_MAX_ROWS);
  if (o->nevents < 0 || o->nevents > MTL_STATS_MAX_ROWS)
    return mtl_error(FN ": %" PRId64 " events (at most %" PRId64 ")", o->nevents, MTL_STATS_MAX_ROWS);
  if (o->nimpressions > 0 && (!o->impression_time || !o->impression_user || !o->impression_item || !is_click || !is_pay))
    return mtl_error(FN ": the impressions need times, users and items");
  if (o->nevents > 0 && (!o->event_time || !o->event_user || !o->event_item || !o->event_type))
    return mtl_error(FN ": the events need times, users, items and types");
  if (o->click_window < 0 || o->click_window > MTL_STATS_MAX_TIME)
    return mtl_error(FN ": option 'click_window' must be 0..2^62 time units, got %" PRId64, o->click_window);
  if (o->pay_window < 0 || o->pay_window > MTL_STATS_MAX_TIME)
    return mtl_error(FN ": option 'pay_window' must be 0..2^62 time units, got %" PRId64, o->pay_window);
  if (check_times(FN, "impression", o->impression_time, o->nimpressions) < 0 ||
      check_times(FN, "event", o->event_time, o->nevents) < 0)
    return -1;
  if (o->click_code == o->pay_code) return mtl_error(FN ": clicks and purchases have the same event code");
  int64_t ni = o->nimpressions, ne = o->nevents;
  uint32_t *iorder = NULL, *eorder = NULL;
  int64_t *ctime = NULL;
  uint8_t *rank = NULL;
  mtl_id_map last_imp = {0}, last_click = {0};
  int rc = -1;
  mtl_samples_label_report rep = {0};
  /* clicks before purchases at equal times; other events are not used */
  rank = malloc((size_t)(ne > 0 ? ne : 1));
  ctime = malloc((size_t)(ni > 0 ? ni : 1) * sizeof *ctime);
  if (!rank || !ctime) goto nomem;
  for (int64_t e = 0; e < ne; e++) rank[e] = o->event_type[e] == o->pay_code ? 1 : 0;
  iorder = sort_by_time(o->impression_time, NULL, ni);
  eorder = sort_by_time(o->event_time, rank, ne);
  if (!iorder || !eorder) goto nomem;
  if (map_init(&last_imp, (uint64_t)ni) < 0 || map_init(&last_click, 1024) < 0) goto nomem;
  for (int64_t i = 0; i < ni; i++) {
    is_click[i] = 0;
    is_pay[i] = 0;
    ctime[i] = MTL_STATS_NONE;
  }
  int64_t a = 0;
  for (int64_t b = 0; b < ne; b++) {
    int64_t e = eorder[b], t = o->event_time[e], type = o->event_type[e];
    if (type != o->click_code && type != o->pay_code) continue;
    while (a < ni && o->impression_time[iorder[a]] <= t) { /* impressions come first at equal times */
      int64_t i = iorder[a++];
      if (map_put(&last_imp, pair_key(o->impression_user[i], o->impression_item[i]), (uint32_t)i) < 0) goto nomem;
    }
    uint64_t key = pair_key(o->event_user[e], o->event_item[e]);
    if (type == o->click_code) {
      rep.clicks++;
      int64_t i = map_value(&last_imp, key);
      if (i < 0 || ctime[i] != MTL_STATS_NONE || t - o->impression_time[i] > o->click_window) continue;
      ctime[i] = t;
      is_click[i] = 1;
      rep.clicks_attributed++;
      if (map_put(&last_click, key, (uint32_t)i) < 0) goto nomem;
    } else {
      rep.purchases++;
      int64_t i = map_value(&last_click, key);
      if (i < 0 || t - ctime[i] > o->pay_window) continue;
      if (!is_pay[i]) rep.purchases_attributed++;
      is_pay[i] = 1;
    }
  }
  if (click_time) memcpy(click_time, ctime, (size_t)ni * sizeof *ctime);
  if (report) *report = rep;
  rc = 0;
  goto done;
nomem:
  mtl_error(FN ": out of memory");
done:
  free(rank);
  free(ctime);
  free(iorder);
  free(eorder);
  mtl_id_map_free(&last_imp);
  mtl_id_map_free(&last_click);
  return rc;
}

int mtl_stats_order(const int64_t *time, int64_t n, int64_t *order) {
  if (n < 0 || n > MTL_STATS_MAX_ROWS)
    return mtl_error("mtl.stats.order: %" PRId64 " values (at most %" PRId64 ")", n, MTL_STATS_MAX_ROWS);
  if (n > 0 && (!time || !order)) return mtl_error("mtl.stats.order: no values");
  uint32_t *a = sort_by_time(time, NULL, n);
  if (!a) return mtl_error("mtl.stats.order: out of memory");
  for (int64_t i = 0; i < n; i++) order[i] = a[i];
  free(a);
  return 0;
}

/* ---- CSV output ------------------------------------------------------------------ */
typedef struct outbuf {
  FILE *f;
  char *buf;
  size_t n, cap;
  bool failed;
} outbuf;

static void ob_flush(outbuf *b) {
  if (b->n && !b->failed && fwrite(b->buf, 1, b->n, b->f) != b->n) b->failed = true;
  b->n = 0;
}

static void ob_write(outbuf *b, const char *s, size_t n) {
  if (b->n + n > b->cap) ob_flush(b);
  if (n > b->cap) {
    if (!b->failed && fwrite(s, 1, n, b->f) != n) b->failed = true;
    return;
  }
  memcpy(b->buf + b->n, s, n);
  b->n += n;
}

static void ob_int(outbuf *b, int64_t v) {
  char tmp[24];
  int p = 24;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[--p] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) tmp[--p] = '-';
  ob_write(b, tmp + p, (size_t)(24 - p));
}

/* v with `digits` significant digits in %g's plain form (no exponent), for
 * 1e-4 <= |v| < 10^digits and digits <= 15; returns the length, or 0 when v
 * needs snprintf (other magnitudes; nan, inf). Rounds like %g except perhaps
 * at exact halfway cases (the scaled value carries one rounding). */
static int format_g(char *out, double v, int digits) {
  static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
  double a = fabs(v);
  if (!(a >= 1e-4) || digits > 15 || !(a < pow10[digits])) return 0;
  int e = (int)floor(log10(a));
  int64_t m = 0;
  for (int tries = 0; tries < 3; tries++) {
    int p = digits - 1 - e; /* 10^p scales a to `digits` integer digits */
    double scaled = p >= 0 ? a * pow10[p] : a / pow10[-p];
    m = llround(scaled);
    if (m >= (int64_t)pow10[digits]) {
      e++;
    } else if (m < (int64_t)pow10[digits - 1]) {
      e--;
    } else {
      break;
    }
  }
  if (m >= (int64_t)pow10[digits] || m < (int64_t)pow10[digits - 1] || e < -4 || e >= digits) return 0;
  char dig[24];
  for (int i = digits - 1; i >= 0; i--, m /= 10) dig[i] = (char)('0' + m % 10);
  int n = 0, frac = digits - 1 - e; /* digits after the decimal point */
  if (v < 0) out[n++] = '-';
  if (frac <= 0) { /* an integer (frac == 0 here, as e < digits) */
    memcpy(out + n, dig, (size_t)digits);
    return n + digits;
  }
  int intdigits = digits - frac; /* may be <= 0: 0.000ddd */
  if (intdigits > 0) {
    memcpy(out + n, dig, (size_t)intdigits);
    n += intdigits;
  } else {
    out[n++] = '0';
  }
  int last = n; /* the end once trailing zeros are dropped */
  out[n++] = '.';
  for (int i = 0; i < -intdigits; i++) out[n++] = '0';
  for (int i = intdigits > 0 ? intdigits : 0; i < digits; i++) {
    out[n++] = dig[i];
    if (dig[i] != '0') last = n;
  }
  return last;
}

static void ob_value(outbuf *b, const mtl_stats_csv_column *col, int64_t i, int digits) {
  const mtl_tensor *t = col->values;
  const char *base = (const char *)t->storage->data;
  int64_t at = t->offset + i * (t->ndim > 0 ? t->stride[0] : 0);
  if (t->dtype == MTL_I64) {
    int64_t v = ((const int64_t *)(const void *)base)[at];
    if (col->labels && v >= 1 && v <= col->nlabels)
      ob_write(b, col->labels[v - 1], strlen(col->labels[v - 1]));
    else
      ob_int(b, v);
    return;
  }
  double v = ((const float *)(const void *)base)[at];
  if (v == floor(v) && fabs(v) < 1e15) {
    ob_int(b, (int64_t)v);
  } else if (isnan(v)) {
    ob_write(b, "nan", 3);
  } else {
    char tmp[40];
    int n = format_g(tmp, v, digits);
    if (n <= 0) n = snprintf(tmp, sizeof tmp, "%.*g", digits, v);
    ob_write(b, tmp, (size_t)n);
  }
}

static int check_columns(const char *fn, int ncols, const mtl_stats_csv_column *cols, int digits, char sep,
                         int64_t *nrows) {
  if (ncols < 1 || !cols) return mtl_error("%s: expected at least one column", fn);
  if (digits < 1 || digits > 17) return mtl_error("%s: digits must be 1..17, got %d", fn, digits);
  for (int c = 0; c < ncols; c++) {
    const mtl_tensor *t = cols[c].values;
    const char *name = cols[c].name;
    if (!name || !name[0]) return mtl_error("%s: column %d has no name", fn, c + 1);
    for (const char *p = name; *p; p++)
      if (*p == sep || *p == '"' || *p == '\n' || *p == '\r')
        return mtl_error("%s: column name \"%s\" contains a separator, quote or line break", fn, name);
    if (!t || t->ndim != 1) return mtl_error("%s: column '%s' must be a 1-D tensor", fn, name);
    for (int k = 0; k < cols[c].nlabels; k++) {
      const char *l = cols[c].labels ? cols[c].labels[k] : NULL;
      if (!l) return mtl_error("%s: column '%s': label %d is missing", fn, name, k + 1);
      for (const char *p = l; *p; p++)
        if (*p == sep || *p == '"' || *p == '\n' || *p == '\r')
          return mtl_error("%s: column '%s': label \"%s\" contains a separator, quote or line break", fn, name, l);
    }
    if (c == 0) *nrows = t->shape[0];
    if (t->shape[0] != *nrows)
      return mtl_error("%s: column '%s' has %" PRId64 " values, column '%s' has %" PRId64, fn, name, t->shape[0],
                       cols[0].name, *nrows);
  }
  return 0;
}

int mtl_stats_write_csv(const char *path, int ncols, const mtl_stats_csv_column *cols, int digits) {
  const char *fn = "mtl.stats.write_csv";
  int64_t n = 0;
  if (!path) return mtl_error("%s: no path", fn);
  if (check_columns(fn, ncols, cols, digits, ',', &n) < 0) return -1;
  outbuf b = {.cap = 1 << 20};
  b.buf = malloc(b.cap);
  if (!b.buf) return mtl_error("%s: out of memory", fn);
  b.f = fopen(path, "wb");
  if (!b.f) {
    free(b.buf);
    return mtl_error("%s: cannot open %s for writing", fn, path);
  }
  for (int c = 0; c < ncols; c++) {
    if (c) ob_write(&b, ",", 1);
    ob_write(&b, cols[c].name, strlen(cols[c].name));
  }
  ob_write(&b, "\n", 1);
  for (int64_t i = 0; i < n; i++) {
    for (int c = 0; c < ncols; c++) {
      if (c) ob_write(&b, ",", 1);
      ob_value(&b, &cols[c], i, digits);
    }
    ob_write(&b, "\n", 1);
  }
  ob_flush(&b);
  bool failed = b.failed | (fclose(b.f) != 0);
  free(b.buf);
  if (failed) return mtl_error("%s: writing %s failed", fn, path);
  return 0;
}

int mtl_stats_append_csv(const char *in_path, const char *out_path, char separator, int ncols,
                         const mtl_stats_csv_column *cols, int digits) {
  const char *fn = "mtl.stats.append_csv";
  int64_t n = 0;
  if (!in_path || !out_path) return mtl_error("%s: no path", fn);
  if (separator == 0) separator = ',';
  if (check_columns(fn, ncols, cols, digits, separator, &n) < 0) return -1;
  struct stat si, so;
  if (stat(in_path, &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
    return mtl_error("%s: the output %s is the input %s (write to another file, then rename it)", fn, out_path, in_path);
  outbuf b = {.cap = 1 << 20};
  b.buf = malloc(b.cap);
  if (!b.buf) return mtl_error("%s: out of memory", fn);
  FILE *in = fopen(in_path, "rb");
  if (!in) {
    free(b.buf);
    return mtl_error("%s: cannot open %s", fn, in_path);
  }
  b.f = fopen(out_path, "wb");
  if (!b.f) {
    fclose(in);
    free(b.buf);
    return mtl_error("%s: cannot open %s for writing", fn, out_path);
  }
  char *line = NULL;
  size_t linecap = 0;
  ssize_t len;
  int64_t lineno = 0, row = 0;
  int rc = 0;
  while ((len = getline(&line, &linecap, in)) >= 0) {
    lineno++;
    size_t body = (size_t)len, nl = 0;
    if (body && line[body - 1] == '\n') body--, nl++;
    if (body && line[body - 1] == '\r') body--, nl++;
    if (body == 0 && lineno > 1) { /* blank lines stay as they are */
      ob_write(&b, line, (size_t)len);
      continue;
    }
    if (lineno > 1 && row >= n) {
      rc = mtl_error("%s: %s has more data lines than the columns' %" PRId64 " values (line %" PRId64 ")", fn,
                     in_path, n, lineno);
      break;
    }
    ob_write(&b, line, body);
    for (int c = 0; c < ncols; c++) {
      ob_write(&b, &separator, 1);
      if (lineno == 1)
        ob_write(&b, cols[c].name, strlen(cols[c].name));
      else
        ob_value(&b, &cols[c], row, digits);
    }
    if (lineno > 1) row++;
    ob_write(&b, nl ? line + body : "\n", nl ? nl : 1);
  }
  if (rc == 0 && ferror(in)) rc = mtl_error("%s: reading %s failed", fn, in_path);
  if (rc == 0 && lineno == 0) rc = mtl_error("%s: %s is empty (expected a header line)", fn, in_path);
  if (rc == 0 && row != n)
    rc = mtl_error("%s: %s has %" PRId64 " data lines, the columns have %" PRId64 " values", fn, in_path, row, n);
  free(line);
  fclose(in);
  ob_flush(&b);
  bool failed = b.failed | (fclose(b.f) != 0);
  free(b.buf);
  if (rc == 0 && failed) rc = mtl_error("%s: writing %s failed", fn, out_path);
  return rc;
}
