/* Lua binding of optimizers: the mtl.Optimizer handle (lua/mtl/optim.lua
 * wraps it in the Lua-facing object), its step / zero_grad / state /
 * state_dict / load_state_dict, and gradient-norm clipping. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_embedding.h"
#include "mtl/optim.h"

#define OPTIM_MT "mtl.Optimizer"

static mtl_optimizer *check_optim(lua_State *L, int idx, const char *fname) {
  mtl_optimizer **ud = luaL_testudata(L, idx, OPTIM_MT);
  if (!ud || !*ud) luaL_error(L, "%s: expected an optimizer handle, got %s", fname, luaL_typename(L, idx));
  return *ud;
}

/* ---- options ----------------------------------------------------------------- */
static const struct { const char *name; size_t off; } number_options[] = {
  {"lr", offsetof(mtl_optim_config, lr)},
  {"weight_decay", offsetof(mtl_optim_config, weight_decay)},
  {"momentum", offsetof(mtl_optim_config, momentum)},
  {"beta1", offsetof(mtl_optim_config, beta1)},
  {"beta2", offsetof(mtl_optim_config, beta2)},
  {"eps", offsetof(mtl_optim_config, eps)},
  {"alpha", offsetof(mtl_optim_config, alpha)},
  {"lr_decay", offsetof(mtl_optim_config, lr_decay)},
  {"initial_accumulator", offsetof(mtl_optim_config, initial_accumulator)},
  {"lr_power", offsetof(mtl_optim_config, lr_power)},
  {"l1", offsetof(mtl_optim_config, l1)},
  {"l2", offsetof(mtl_optim_config, l2)},
};

static double *number_field(mtl_optim_config *c, const char *name) {
  for (size_t i = 0; i < sizeof number_options / sizeof number_options[0]; i++)
    if (!strcmp(name, number_options[i].name)) return (double *)((char *)c + number_options[i].off);
  return NULL;
}

static bool accepts(mtl_optim_kind k, const char *key) {
  for (const char *const *o = mtl_optim_options(k); *o; o++)
    if (!strcmp(*o, key)) return true;
  return false;
}

/* Reads the options of the group table at idx into c (every key but params). */
static void parse_group(lua_State *L, int idx, mtl_optim_kind k, mtl_optim_config *c, const char *fname) {
  mtl_optim_defaults(k, c);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (key && !strcmp(key, "params")) {
      lua_pop(L, 1);
      continue;
    }
    if (!key || !accepts(k, key)) {
      char list[160] = "";
      for (const char *const *o = mtl_optim_options(k); *o; o++) {
        strncat(list, o == mtl_optim_options(k) ? "" : ", ", sizeof list - strlen(list) - 1);
        strncat(list, *o, sizeof list - strlen(list) - 1);
      }
      luaL_error(L, "%s: unknown option '%s' (expected %s)", fname, key ? key : luaL_typename(L, -2), list);
    }
    if (!strcmp(key, "nesterov") || !strcmp(key, "centered")) {
      if (!lua_isboolean(L, -1))
        luaL_error(L, "%s: option '%s' must be a boolean, got %s", fname, key, luaL_typename(L, -1));
      if (key[0] == 'n') c->nesterov = lua_toboolean(L, -1);
      else c->centered = lua_toboolean(L, -1);
    } else {
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "%s: option '%s' must be a number, got %s", fname, key, luaL_typename(L, -1));
      *number_field(c, key) = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
}

/* core.optim_new(kind, groups): groups = list of {params = {...}, option = value, ...} */
static int l_optim_new(lua_State *L) {
  const char *kname = luaL_checkstring(L, 1);
  int kind = mtl_optim_kind_from_name(kname);
  if (kind < 0) return luaL_error(L, "mtl.optim: unknown optimizer '%s'", kname);
  char fname[64];
  snprintf(fname, sizeof fname, "mtl.optim.%s", kname);
  luaL_checktype(L, 2, LUA_TTABLE);
  int ng = (int)lua_objlen(L, 2);
  if (ng < 1) return luaL_error(L, "%s: expected at least one parameter group", fname);
  mtl_optim_config *cfg = lua_newuserdata(L, (size_t)ng * sizeof *cfg); /* scratch */
  for (int g = 0; g < ng; g++) {
    lua_rawgeti(L, 2, g + 1);
    if (!lua_istable(L, -1)) luaL_error(L, "%s: group %d must be a table, got %s", fname, g + 1, luaL_typename(L, -1));
    parse_group(L, lua_gettop(L), (mtl_optim_kind)kind, &cfg[g], fname);
    lua_pop(L, 1);
  }
  mtl_optimizer **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  luaL_getmetatable(L, OPTIM_MT);
  lua_setmetatable(L, -2);
  int top = lua_gettop(L);
  if (!(*ud = mtl_optimizer_new((mtl_optim_kind)kind, ng, cfg))) return bind_error(L);
  int pos = 0;
  for (int g = 0; g < ng; g++) {
    lua_rawgeti(L, 2, g + 1);
    lua_getfield(L, -1, "params");
    if (!lua_istable(L, -1))
      luaL_error(L, "%s: group %d needs params (a list of tensors and embedding tables), got %s", fname, g + 1,
                 luaL_typename(L, -1));
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      pos++;
      mtl_tensor *t = bind_test_tensor(L, -1);
      mtl_embedding *e = t ? NULL : bind_test_embedding(L, -1);
      if (!t && !e)
        luaL_error(L, "%s: parameter %d must be a tensor or an mtl.Embedding, got %s", fname, pos,
                   luaL_typename(L, -1));
      if ((t ? mtl_optimizer_add_tensor(*ud, g, t) : mtl_optimizer_add_table(*ud, g, e)) < 0) return bind_error(L);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_settop(L, top);
  return 1;
}

/* h:step([lr1, lr2, ...]): the group lrs for this step (nil keeps the last). Returns the step count. */
static int l_step(lua_State *L) {
  mtl_optimizer *o = check_optim(L, 1, "step");
  for (int g = 0; g < o->ngroups; g++) {
    int a = g + 2;
    if (lua_isnoneornil(L, a)) continue;
    double lr = lua_type(L, a) == LUA_TNUMBER ? lua_tonumber(L, a) : NAN;
    if (!(lr >= 0) || !isfinite(lr)) {
      if (lua_type(L, a) == LUA_TNUMBER)
        return luaL_error(L, "mtl.optim.%s: lr must be a finite number >= 0, got %f (group %d, step %d)",
                          mtl_optim_kind_name(o->kind), lua_tonumber(L, a), g + 1, (int)o->steps + 1);
      return luaL_error(L, "mtl.optim.%s: lr must be a number, got %s (group %d)", mtl_optim_kind_name(o->kind),
                        luaL_typename(L, a), g + 1);
    }
    o->groups[g].lr = lr;
  }
  if (mtl_optimizer_step(o) < 0) return bind_error(L);
  lua_pushnumber(L, (lua_Number)o->steps);
  return 1;
}

static int l_zero_grad(lua_State *L) {
  mtl_optimizer_zero_grad(check_optim(L, 1, "zero_grad"));
  return 0;
}

static int l_steps(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_optim(L, 1, "steps")->steps);
  return 1;
}

/* h:group(i) -> the numeric options of group i (1-based) */
static int l_group(lua_State *L) {
  mtl_optimizer *o = check_optim(L, 1, "group");
  lua_Integer g = luaL_checkinteger(L, 2);
  if (g < 1 || g > o->ngroups) return luaL_error(L, "group: index %d out of range (expected 1..%d)", (int)g, o->ngroups);
  mtl_optim_config *c = &o->groups[g - 1];
  lua_newtable(L);
  for (const char *const *k = mtl_optim_options(o->kind); *k; k++) {
    if (!strcmp(*k, "nesterov")) lua_pushboolean(L, c->nesterov);
    else if (!strcmp(*k, "centered")) lua_pushboolean(L, c->centered);
    else lua_pushnumber(L, *number_field(c, *k));
    lua_setfield(L, -2, *k);
  }
  return 1;
}

/* ---- state ---------------------------------------------------------------------- */
/* Pushes {kind=, step=, <state name> = tensor, [ids =]} for parameter i. The
 * tensors share memory with the live state, except a dynamic table's (rows
 * gathered in id order, with their ids). */
static void push_param_state(lua_State *L, mtl_optimizer *o, int i) {
  mtl_optim_param *p = &o->params[i];
  const char *names[MTL_OPTIM_MAX_STATE];
  float init[MTL_OPTIM_MAX_STATE];
  mtl_optim_state_layout(o->kind, &o->groups[p->group], names, init);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, p->table ? "embedding" : "tensor");
  lua_setfield(L, -2, "kind");
  lua_pushnumber(L, (lua_Number)p->step);
  lua_setfield(L, -2, "step");
  mtl_embedding *t = p->table;
  if (t && t->slot_owner != o) return; /* its state now belongs to a later optimizer */
  int64_t *rows = NULL;
  if (t && t->cfg.kind == MTL_EMB_DYNAMIC) {
    mtl_tensor *ids;
    if (mtl_embedding_sorted_rows(t, &ids, &rows) < 0) bind_error(L);
    bind_push(L, ids);
    lua_setfield(L, -2, "ids");
  }
  for (int s = 0; s < MTL_OPTIM_MAX_STATE; s++) {
    if (!names[s]) continue;
    mtl_tensor *v = NULL;
    if (!t) {
      if (!p->state[s]) continue; /* allocated at the first update */
      v = mtl_tensor_alias(p->state[s]);
    } else if (rows) {
      v = mtl_embedding_gather_rows(t, t->slot[s], t->nrows, rows);
    } else {
      v = mtl_tensor_alias(t->slot[s]);
    }
    if (!v) {
      free(rows);
      bind_error(L);
    }
    bind_push(L, v);
    lua_setfield(L, -2, names[s]);
  }
  free(rows);
}

static int l_state(lua_State *L) {
  mtl_optimizer *o = check_optim(L, 1, "state");
  lua_createtable(L, o->nparams, 0);
  for (int i = 0; i < o->nparams; i++) {
    push_param_state(L, o, i);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_state_dict(lua_State *L) {
  mtl_optimizer *o = check_optim(L, 1, "state_dict");
  lua_createtable(L, 0, 4);
  lua_pushstring(L, mtl_optim_kind_name(o->kind));
  lua_setfield(L, -2, "kind");
  lua_pushnumber(L, (lua_Number)o->steps);
  lua_setfield(L, -2, "steps");
  lua_createtable(L, o->ngroups, 0);
  for (int g = 0; g < o->ngroups; g++) {
    lua_pushcfunction(L, l_group);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, g + 1);
    lua_call(L, 2, 1);
    lua_rawseti(L, -2, g + 1);
  }
  lua_setfield(L, -2, "groups");
  l_state(L);
  lua_setfield(L, -2, "params");
  return 1;
}

/* The float32 tensor field `name` of the entry at idx, or NULL; errors on a wrong type. */
static mtl_tensor *state_tensor(lua_State *L, int idx, const char *name, const char *fname, int i) {
  lua_getfield(L, idx, name);
  mtl_tensor *t = bind_test_tensor(L, -1);
  if (!t && !lua_isnil(L, -1))
    luaL_error(L, "%s: parameter %d: '%s' must be a tensor, got %s", fname, i + 1, name, luaL_typename(L, -1));
  lua_pop(L, 1); /* the entry keeps it alive */
  return t;
}

static void check_shape(lua_State *L, const mtl_tensor *v, int ndim, const int64_t *shape, mtl_dtype dt,
                        const char *fname, int i, const char *name) {
  bool ok = v->dtype == dt && v->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = v->shape[d] == shape[d];
  if (!ok) {
    char a[64], b[64];
    luaL_error(L, "%s: parameter %d: '%s' must be %s %s, got %s %s", fname, i + 1, name, mtl_dtype_name(dt),
               mtl_dims_str(ndim, shape, a, sizeof a), mtl_dtype_name(v->dtype), mtl_shape_str(v, b, sizeof b));
  }
}

/* Checks (pass 0) then copies (pass 1) the state of every parameter, so a bad
 * state_dict changes nothing. */
static void load_params(lua_State *L, mtl_optimizer *o, int list, int pass, const char *fname) {
  for (int i = 0; i < o->nparams; i++) {
    mtl_optim_param *p = &o->params[i];
    mtl_embedding *t = p->table;
    lua_rawgeti(L, list, i + 1);
    int e = lua_gettop(L);
    if (!lua_istable(L, e)) luaL_error(L, "%s: parameter %d: expected a table, got %s", fname, i + 1, luaL_typename(L, e));
    lua_getfield(L, e, "kind");
    const char *kind = lua_tostring(L, -1), *want = t ? "embedding" : "tensor";
    if (!kind || strcmp(kind, want) != 0)
      luaL_error(L, "%s: parameter %d: the state is of %s, the parameter is %s", fname, i + 1,
                 kind ? kind : "(missing kind)", want);
    lua_pop(L, 1);
    lua_getfield(L, e, "step");
    double step = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || step < 0 || step != floor(step))
      luaL_error(L, "%s: parameter %d: step must be an integer >= 0", fname, i + 1);
    lua_pop(L, 1);
    const char *names[MTL_OPTIM_MAX_STATE];
    float init[MTL_OPTIM_MAX_STATE];
    mtl_optim_state_layout(o->kind, &o->groups[p->group], names, init);
    if (t && t->slot_owner != o)
      luaL_error(L, "%s: parameter %d: the embedding table is now updated by another optimizer", fname, i + 1);
    /* rows of a dynamic table, found by id */
    mtl_tensor *ids = t && t->cfg.kind == MTL_EMB_DYNAMIC ? state_tensor(L, e, "ids", fname, i) : NULL;
    if (t && t->cfg.kind == MTL_EMB_DYNAMIC) {
      if (!ids) luaL_error(L, "%s: parameter %d: 'ids' missing for a dynamic table", fname, i + 1);
      int64_t n = ids->numel;
      check_shape(L, ids, 1, &n, MTL_I64, fname, i, "ids");
      for (int64_t k = 0; pass == 0 && k < n; k++) {
        int64_t idx1[1] = {k};
        int64_t id = (int64_t)mtl_tensor_get_at(ids, idx1);
        if (mtl_embedding_find(t, id) < 0) {
          char msg[200]; /* lua_pushfstring has no %lld */
          snprintf(msg, sizeof msg, "%s: parameter %d: id %lld has no row in the table (load the table's state first)",
                   fname, i + 1, (long long)id);
          luaL_error(L, "%s", msg);
        }
      }
    }
    for (int s = 0; s < MTL_OPTIM_MAX_STATE; s++) {
      if (!names[s]) continue;
      mtl_tensor *v = state_tensor(L, e, names[s], fname, i);
      if (!v) {
        if (t || step > 0) luaL_error(L, "%s: parameter %d: '%s' missing", fname, i + 1, names[s]);
        if (pass == 1) {
          mtl_tensor_release(p->state[s]);
          p->state[s] = NULL;
        }
        continue;
      }
      if (!t) {
        check_shape(L, v, p->param->ndim, p->param->shape, MTL_F32, fname, i, names[s]);
        if (pass == 1) {
          if (!p->state[s] && !(p->state[s] = mtl_tensor_new(MTL_F32, p->param->ndim, p->param->shape)))
            bind_error(L);
          mtl_tensor_copy_into(p->state[s], v);
        }
      } else if (!ids) {
        check_shape(L, v, 2, t->slot[s]->shape, MTL_F32, fname, i, names[s]);
        if (pass == 1) mtl_tensor_copy_into(t->slot[s], v);
      } else {
        int64_t shape[2] = {ids->numel, t->cfg.dim};
        check_shape(L, v, 2, shape, MTL_F32, fname, i, names[s]);
        for (int64_t k = 0; pass == 1 && k < ids->numel; k++) {
          int64_t idx1[1] = {k};
          int64_t row = mtl_embedding_find(t, (int64_t)mtl_tensor_get_at(ids, idx1));
          float *dst = mtl_embedding_slot_row(t, s, row);
          for (int64_t j = 0; j < t->cfg.dim; j++) {
            int64_t idx2[2] = {k, j};
            dst[j] = (float)mtl_tensor_get_at(v, idx2);
          }
        }
      }
    }
    if (pass == 1) p->step = (int64_t)step;
    lua_settop(L, e - 1);
  }
}

static int l_load_state_dict(lua_State *L) {
  const char *fname = "load_state_dict";
  mtl_optimizer *o = check_optim(L, 1, fname);
  luaL_checktype(L, 2, LUA_TTABLE);
  char name[64];
  snprintf(name, sizeof name, "mtl.optim.%s.load_state_dict", mtl_optim_kind_name(o->kind));
  lua_getfield(L, 2, "kind");
  const char *kind = lua_tostring(L, -1);
  if (!kind || strcmp(kind, mtl_optim_kind_name(o->kind)) != 0)
    return luaL_error(L, "%s: the state is of a %s optimizer", name, kind ? kind : "(missing kind)");
  lua_getfield(L, 2, "steps");
  double steps = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || steps < 0 || steps != floor(steps))
    return luaL_error(L, "%s: steps must be an integer >= 0", name);
  lua_getfield(L, 2, "params");
  int list = lua_gettop(L);
  if (!lua_istable(L, list) || (int)lua_objlen(L, list) != o->nparams)
    return luaL_error(L, "%s: expected params with %d entries, got %s", name, o->nparams,
                      lua_istable(L, list) ? "another count" : luaL_typename(L, list));
  load_params(L, o, list, 0, name);
  load_params(L, o, list, 1, name);
  o->steps = (int64_t)steps;
  lua_settop(L, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  mtl_optimizer **ud = luaL_checkudata(L, 1, OPTIM_MT);
  mtl_optimizer_free(*ud);
  *ud = NULL;
  return 0;
}

/* ---- clipping ------------------------------------------------------------------------ */
/* core.clip_grad_norm(handle | param | list of params, max_norm) -> norm before clipping */
static int l_clip_grad_norm(lua_State *L) {
  const char *fname = "mtl.optim.clip_grad_norm";
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "%s: max_norm must be a finite number > 0, got %s", fname, luaL_typename(L, 2));
  double max_norm = lua_tonumber(L, 2);
  if (!(max_norm > 0) || !isfinite(max_norm))
    return luaL_error(L, "%s: max_norm must be a finite number > 0, got %f", fname, max_norm);
  mtl_optimizer **ud = luaL_testudata(L, 1, OPTIM_MT);
  int n = ud && *ud ? (*ud)->nparams : lua_istable(L, 1) ? (int)lua_objlen(L, 1) : 1;
  mtl_tensor **ts = lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *ts);
  mtl_embedding **es = lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *es);
  int nt = 0, ne = 0;
  if (ud && *ud) {
    for (int i = 0; i < n; i++) {
      if ((*ud)->params[i].table) es[ne++] = (*ud)->params[i].table;
      else ts[nt++] = (*ud)->params[i].param;
    }
  } else {
    bool list = lua_istable(L, 1);
    for (int i = 1; i <= n; i++) {
      if (list) lua_rawgeti(L, 1, i);
      else lua_pushvalue(L, 1);
      mtl_tensor *t = bind_test_tensor(L, -1);
      mtl_embedding *e = t ? NULL : bind_test_embedding(L, -1);
      if (t) ts[nt++] = t;
      else if (e) es[ne++] = e;
      else
        return luaL_error(L, "%s: parameter %d must be a tensor or an mtl.Embedding, got %s", fname, i,
                          luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pushnumber(L, mtl_clip_grad_norm(nt, ts, ne, es, max_norm));
  return 1;
}

void bind_optim_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg meths[] = {
    {"step", l_step}, {"zero_grad", l_zero_grad}, {"steps", l_steps}, {"group", l_group},
    {"state", l_state}, {"state_dict", l_state_dict}, {"load_state_dict", l_load_state_dict},
    {NULL, NULL},
  };
  bind_new_class(L, OPTIM_MT, meths, l_gc, NULL);
  /* core._optim = {new = ..., clip_grad_norm = ...}; lua/mtl/optim.lua wraps them */
  static const luaL_Reg fns[] = {{"new", l_optim_new}, {"clip_grad_norm", l_clip_grad_norm}, {NULL, NULL}};
  lua_createtable(L, 0, 2);
  luaL_register(L, NULL, fns);
  lua_setfield(L, mod, "_optim");
}
