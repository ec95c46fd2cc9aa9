"""The compiled core of the request-level simulator: an event heap and replica tables.

The Python driver (`driver`) calls `advance` between controller decisions and `apply`
when a controller changes allocations; everything in between runs here, in numba, on
plain arrays, so a day of traffic at thousands of requests per second simulates in
seconds. The rules it implements are those of `driver`'s docstring (SPEC, "Serving model").
"""

import numba
import numpy as np

# replica states
_BOOTING, _IDLE, _BUSY, _GONE = 0, 1, 2, 3
# event kinds
_EV_DONE, _EV_READY, _EV_RESIZE = 0, 1, 2
# action kinds (driver -> engine)
ACT_ADD, ACT_ADD_READY, ACT_REMOVE, ACT_RESIZE = 0, 1, 2, 3
# columns of the float replica table
_F_BUSY_START, _F_COST_SINCE, _F_READY_AT = 0, 1, 2
# columns of the int replica table
_I_STAGE, _I_CIDX, _I_STATE, _I_REMOVING, _I_QSTART, _I_K, _I_IDLE_SEQ, _I_COST_CIDX, _I_TOKEN, _I_PENDING = range(10)
# global counters
_G_PTR, _G_HEAP_N, _G_SEQ, _G_IDLE_SEQ, _G_NSLOTS = range(5)
# per-stage float stats
_S_BUSY_CORE_S, _S_READY_CORE_S, _S_READY_LAST, _S_CORE_S = range(4)
# per-stage int stats
_SI_HEAD, _SI_TAIL, _SI_BATCH, _SI_READY_CORES, _SI_LIVE_N = range(5)




@numba.njit(cache=True)
def _push(ht, hi, g, t, kind, slot, token):
    n = g[_G_HEAP_N]
    seq = g[_G_SEQ]
    g[_G_SEQ] = seq + 1
    i = n
    g[_G_HEAP_N] = n + 1
    while i > 0:
        parent = (i - 1) >> 1
        if ht[parent] < t or (ht[parent] == t and hi[parent, 0] < seq):
            break
        ht[i] = ht[parent]
        hi[i, :] = hi[parent, :]
        i = parent
    ht[i] = t
    hi[i, 0] = seq
    hi[i, 1] = kind
    hi[i, 2] = slot
    hi[i, 3] = token


@numba.njit(cache=True)
def _pop(ht, hi, g):
    """Remove the heap top (its fields must have been read before)."""
    n = g[_G_HEAP_N] - 1
    g[_G_HEAP_N] = n
    if n == 0:
        return
    t = ht[n]
    seq = hi[n, 0]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and (ht[child + 1] < ht[child] or (ht[child + 1] == ht[child] and hi[child + 1, 0] < hi[child, 0])):
            child += 1
        if ht[child] > t or (ht[child] == t and hi[child, 0] > seq):
            break
        ht[i] = ht[child]
        hi[i, :] = hi[child, :]
        i = child
    ht[i] = t
    hi[i, :] = hi[n, :]


@numba.njit(cache=True)
def _charge(rf, ri, sf, cores_values, slot, t, horizon):
    """Add the replica's core-seconds up to t (clamped to the horizon)."""
    since = rf[slot, _F_COST_SINCE]
    until = min(t, horizon)
    if until > since:
        sf[ri[slot, _I_STAGE], _S_CORE_S] += cores_values[ri[slot, _I_COST_CIDX]] * (until - since)
    rf[slot, _F_COST_SINCE] = max(since, until)


@numba.njit(cache=True)
def _ready_change(sf, si, s, t, delta_cores):
    sf[s, _S_READY_CORE_S] += si[s, _SI_READY_CORES] * (t - sf[s, _S_READY_LAST])
    sf[s, _S_READY_LAST] = t
    si[s, _SI_READY_CORES] += delta_cores


@numba.njit(cache=True)
def _drop_live(si, live, s, slot):
    n = si[s, _SI_LIVE_N]
    for i in range(n):
        if live[s, i] == slot:
            live[s, i] = live[s, n - 1]
            si[s, _SI_LIVE_N] = n - 1
            return


@numba.njit(cache=True)
def _service_s(s, k, cidx, first_req, n_req, service, quant, knots, uniforms, sampled):
    if not sampled:
        return service[s, k, cidx] / 1000.0
    u = uniforms[s * n_req + first_req]
    for m in range(1, knots.size):
        if u <= knots[m]:
            lo = quant[s, k, cidx, m - 1]
            hi = quant[s, k, cidx, m]
            return (lo + (hi - lo) * (u - knots[m - 1]) / (knots[m] - knots[m - 1])) / 1000.0
    return quant[s, k, cidx, knots.size - 1] / 1000.0


@numba.njit(cache=True)
def _dispatch(s, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req):
    """Give queued requests of stage s to idle ready replicas, longest idle first."""
    while si[s, _SI_TAIL] > si[s, _SI_HEAD]:
        best = -1
        best_seq = 0
        for i in range(si[s, _SI_LIVE_N]):
            slot = live[s, i]
            if ri[slot, _I_STATE] == _IDLE and (best < 0 or ri[slot, _I_IDLE_SEQ] < best_seq):
                best = slot
                best_seq = ri[slot, _I_IDLE_SEQ]
        if best < 0:
            return
        head = si[s, _SI_HEAD]
        k = min(si[s, _SI_TAIL] - head, si[s, _SI_BATCH])
        svc = _service_s(s, k, ri[best, _I_CIDX], queues[s, head], n_req, service, quant, knots, uniforms, sampled)
        ri[best, _I_STATE] = _BUSY
        ri[best, _I_QSTART] = head
        ri[best, _I_K] = k
        rf[best, _F_BUSY_START] = t
        si[s, _SI_HEAD] = head + k
        _push(ht, hi, g, t + svc, _EV_DONE, best, 0)


@numba.njit(cache=True)
def _advance(
    t_until, horizon, arrivals, queues, done, si, sf, rf, ri, live, ht, hi, g,
    cores_values, service, quant, knots, uniforms, sampled,
):
    """Process every event strictly before t_until (replica events before arrivals on ties)."""
    n_req = arrivals.size
    n_stages = si.shape[0]
    while True:
        th = ht[0] if g[_G_HEAP_N] > 0 else np.inf
        ptr = g[_G_PTR]
        ta = arrivals[ptr] if ptr < n_req else np.inf
        if th <= ta:
            t = th
            if t >= t_until or t == np.inf:
                return
            kind = hi[0, 1]
            slot = hi[0, 2]
            token = hi[0, 3]
            _pop(ht, hi, g)
            s = ri[slot, _I_STAGE]
            if kind == _EV_DONE:
                cores = cores_values[ri[slot, _I_CIDX]]
                sf[s, _S_BUSY_CORE_S] += cores * (t - rf[slot, _F_BUSY_START])
                q0 = ri[slot, _I_QSTART]
                for j in range(q0, q0 + ri[slot, _I_K]):
                    req = queues[s, j]
                    if s + 1 < n_stages:
                        queues[s + 1, si[s + 1, _SI_TAIL]] = req
                        si[s + 1, _SI_TAIL] += 1
                    else:
                        done[req] = t
                if ri[slot, _I_REMOVING] == 1:
                    _charge(rf, ri, sf, cores_values, slot, t, horizon)
                    ri[slot, _I_STATE] = _GONE
                else:
                    ri[slot, _I_STATE] = _IDLE
                    ri[slot, _I_IDLE_SEQ] = g[_G_IDLE_SEQ]
                    g[_G_IDLE_SEQ] += 1
                    _dispatch(s, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)
                if s + 1 < n_stages:
                    _dispatch(s + 1, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)
            elif kind == _EV_READY:
                if ri[slot, _I_STATE] == _BOOTING:
                    ri[slot, _I_STATE] = _IDLE
                    ri[slot, _I_IDLE_SEQ] = g[_G_IDLE_SEQ]
                    g[_G_IDLE_SEQ] += 1
                    _ready_change(sf, si, s, t, cores_values[ri[slot, _I_CIDX]])
                    _dispatch(s, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)
            else:  # _EV_RESIZE
                if token == ri[slot, _I_TOKEN] and ri[slot, _I_STATE] != _GONE and ri[slot, _I_REMOVING] == 0:
                    _charge(rf, ri, sf, cores_values, slot, t, horizon)
                    old = ri[slot, _I_CIDX]
                    new = ri[slot, _I_PENDING]
                    ri[slot, _I_CIDX] = new
                    ri[slot, _I_COST_CIDX] = new
                    if ri[slot, _I_STATE] != _BOOTING:
                        _ready_change(sf, si, s, t, cores_values[new] - cores_values[old])
        else:
            t = ta
            if t >= t_until:
                return
            queues[0, si[0, _SI_TAIL]] = ptr
            si[0, _SI_TAIL] += 1
            g[_G_PTR] = ptr + 1
            _dispatch(0, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)


@numba.njit(cache=True)
def _apply(t, acts, cold_start_s, resize_s, horizon, si, sf, rf, ri, live, ht, hi, g, cores_values):
    """Apply controller actions at time t: rows (kind, stage or slot, cores index)."""
    for a in range(acts.shape[0]):
        kind = acts[a, 0]
        if kind == ACT_ADD or kind == ACT_ADD_READY:
            s = acts[a, 1]
            slot = g[_G_NSLOTS]
            g[_G_NSLOTS] = slot + 1
            ri[slot, _I_STAGE] = s
            ri[slot, _I_CIDX] = acts[a, 2]
            ri[slot, _I_COST_CIDX] = acts[a, 2]
            ri[slot, _I_REMOVING] = 0
            ri[slot, _I_TOKEN] = 0
            rf[slot, _F_COST_SINCE] = min(t, horizon)
            live[s, si[s, _SI_LIVE_N]] = slot
            si[s, _SI_LIVE_N] += 1
            if kind == ACT_ADD_READY or cold_start_s == 0.0:
                ri[slot, _I_STATE] = _IDLE
                ri[slot, _I_IDLE_SEQ] = g[_G_IDLE_SEQ]
                g[_G_IDLE_SEQ] += 1
                rf[slot, _F_READY_AT] = t
                _ready_change(sf, si, s, t, cores_values[acts[a, 2]])
            else:
                ri[slot, _I_STATE] = _BOOTING
                rf[slot, _F_READY_AT] = t + cold_start_s
                _push(ht, hi, g, t + cold_start_s, _EV_READY, slot, 0)
        elif kind == ACT_REMOVE:
            slot = acts[a, 1]
            s = ri[slot, _I_STAGE]
            _drop_live(si, live, s, slot)
            ri[slot, _I_REMOVING] = 1
            state = ri[slot, _I_STATE]
            if state != _BOOTING:
                _ready_change(sf, si, s, t, -cores_values[ri[slot, _I_CIDX]])
            if state != _BUSY:
                _charge(rf, ri, sf, cores_values, slot, t, horizon)
                ri[slot, _I_STATE] = _GONE
        else:  # ACT_RESIZE
            slot = acts[a, 1]
            ri[slot, _I_TOKEN] += 1
            ri[slot, _I_PENDING] = acts[a, 2]
            _push(ht, hi, g, t + resize_s, _EV_RESIZE, slot, ri[slot, _I_TOKEN])


@numba.njit(cache=True)
def _busy_core_s(t, s, sf, rf, ri, g, cores_values):
    """Busy core-seconds of stage s up to t, counting batches still running."""
    total = sf[s, _S_BUSY_CORE_S]
    for slot in range(g[_G_NSLOTS]):
        if ri[slot, _I_STAGE] == s and ri[slot, _I_STATE] == _BUSY:
            total += cores_values[ri[slot, _I_CIDX]] * (t - rf[slot, _F_BUSY_START])
    return total


# ----------------------------------------------------------------------------- Python driver
