#!/usr/bin/env python3
"""examples_check: recompute the numbers the teaching examples print, independently, with numpy (float64).

    python3 tests/examples_check.py lstm_step     OUTPUT   # build/examples/lstm_step's output
    python3 tests/examples_check.py prune_by_hand OUTPUT   # build/examples/prune_by_hand's output

lstm_step: from the weights, inputs and loss weights the program prints, the forward pass and BPTT of
L = sum_t r_t . h_t are recomputed here (whole-matrix numpy, not the C loops) and every printed number is
compared; a printed line that is not expected, or an expected one that is missing, fails too.

prune_by_hand: the eigenvalues of the printed covariance (numpy.linalg.eigvalsh), the energy fractions,
the keep count of the energy rule, the unit vectors and their distance sums built from the printed
weights as docs/METHOD.md defines them ("3. Which units"), the removed and kept units, the shrunk layer's
weights (the kept rows and columns of the printed ones, exactly) and the removal checks the program states.

Prints "compared N numbers" and exits 0 when everything agrees; otherwise prints each disagreement and
exits 1. Used by tests/test_examples.c."""
import re
import sys

import numpy as np

# Printed with %.6f (lstm_step) or %.8f (covariance, eigenvalues): 5e-7 of rounding per number, a few
# such in any recomputed value; float64 adds nothing comparable.
TOL = 1e-5
GATES = "ifgo"


class Checker:
    def __init__(self):
        self.n = 0
        self.bad = []

    def close(self, what, got, want, tol=TOL):
        got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
        if got.shape != want.shape:
            self.bad.append(f"{what}: shape {got.shape}, expected {want.shape}")
            return
        self.n += got.size
        err = np.abs(got - want)
        if err.size and err.max() > tol:
            k = int(err.argmax())
            self.bad.append(f"{what}: printed {got.flat[k]:.8f}, recomputed {want.flat[k]:.8f} "
                            f"(|diff| {err.max():.2e} > {tol:g})")

    def true(self, what, cond):
        self.n += 1
        if not cond:
            self.bad.append(what)

    def finish(self):
        for b in self.bad:
            print("MISMATCH", b)
        print(f"compared {self.n} numbers, {len(self.bad)} mismatches")
        return 1 if self.bad or self.n == 0 else 0


def parse(path):
    """Every 'key = [a b; c d]' line as key -> 2-D array (rows split at ';'), 'key = number' as a float."""
    vals, lines = {}, open(path, encoding="utf-8").read().splitlines()
    for line in lines:
        m = re.match(r"^(.*?) = \[(.*)\]$", line)
        if m:
            rows = [[float(v) for v in r.split()] for r in m.group(2).split(";")]
            vals[m.group(1)] = np.array(rows)
            continue
        m = re.match(r"^(\S+) = (-?[0-9.]+)$", line)
        if m:
            vals[m.group(1)] = float(m.group(2))
    return vals, lines


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def check_lstm_step(path):
    v, _ = parse(path)
    ck = Checker()
    W_ih = np.vstack([v[f"W_ih.{q}"] for q in GATES])  # [4H,F]
    W_hh = np.vstack([v[f"W_hh.{q}"] for q in GATES])  # [4H,H]
    b = np.concatenate([v[f"b.{q}"].ravel() for q in GATES])
    H = W_hh.shape[1]
    T = len([k for k in v if re.fullmatch(r"x_\d+", k)])
    xs = [v[f"x_{t}"].ravel() for t in range(1, T + 1)]
    rs = [v[f"r_{t}"].ravel() for t in range(1, T + 1)]
    ck.true("3 steps, 3 units, 2 inputs", (T, H, W_ih.shape[1]) == (3, 3, 2))

    want = {}
    h, c = np.zeros(H), np.zeros(H)
    hs, cs, acts = [h], [c], [None]
    L = 0.0
    for t in range(1, T + 1):
        a = W_ih @ xs[t - 1] + W_hh @ h + b
        i, f, g, o = sigmoid(a[:H]), sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), sigmoid(a[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        L += rs[t - 1] @ h
        for q in range(4):
            want[f"t={t} a_{GATES[q]}"] = a[q * H:(q + 1) * H]
        want.update({f"t={t} i": i, f"t={t} f": f, f"t={t} g": g, f"t={t} o": o,
                     f"t={t} c": c, f"t={t} tanh_c": np.tanh(c), f"t={t} h": h})
        hs.append(h)
        cs.append(c)
        acts.append((i, f, g, o))
    want["L"] = L

    # BPTT, written as the chain rule on whole vectors
    dh_next, dc_next = np.zeros(H), np.zeros(H)
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b)
    for t in range(T, 0, -1):
        i, f, g, o = acts[t]
        tc = np.tanh(cs[t])
        dh = rs[t - 1] + dh_next
        dc = dc_next + dh * o * (1 - tc ** 2)
        d = {"do": dh * tc, "di": dc * g, "df": dc * cs[t - 1], "dg": dc * i}
        da = np.concatenate([d["di"] * i * (1 - i), d["df"] * f * (1 - f), d["dg"] * (1 - g ** 2),
                             d["do"] * o * (1 - o)])
        dW_ih += np.outer(da, xs[t - 1])
        dW_hh += np.outer(da, hs[t - 1])
        db += da
        dh_next, dc_next = W_hh.T @ da, dc * f
        want.update({f"t={t} dh": dh, f"t={t} dc": dc, f"t={t} dx": W_ih.T @ da,
                     f"t={t} dh_prev": dh_next, f"t={t} dc_prev": dc_next})
        for k, val in d.items():
            want[f"t={t} {k}"] = val
        for q in range(4):
            want[f"t={t} da_{GATES[q]}"] = da[q * H:(q + 1) * H]
    for q in range(4):
        want[f"dW_ih.{GATES[q]}"] = dW_ih[q * H:(q + 1) * H]
        want[f"dW_hh.{GATES[q]}"] = dW_hh[q * H:(q + 1) * H]
        want[f"db.{GATES[q]}"] = db[q * H:(q + 1) * H]

    # the central differences the program prints for a few weights, and their BPTT values (%.9f)
    grads = {"W_ih": dW_ih, "W_hh": dW_hh, "b": db[:, None]}
    n_fd = 0
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^dL/d(W_ih|W_hh|b)\.([ifgo])\[(\d)\](?:\[(\d)\])?: BPTT (\S+), central difference (\S+)$", line)
        if m:
            row = GATES.index(m.group(2)) * H + int(m.group(3))
            g = grads[m.group(1)][row, int(m.group(4) or 0)]
            ck.close(line.split(":")[0], [float(m.group(5)), float(m.group(6))], [g, g], 1e-8)
            n_fd += 1
    ck.true("3 central differences shown", n_fd == 3)

    inputs = {k for k in v if re.fullmatch(r"(W_ih|W_hh|b)\.[ifgo]|x_\d+|r_\d+", k)}
    for k in sorted(set(v) - inputs - set(want)):
        ck.true(f"printed line '{k}' is not one the check knows", False)
    for k, val in want.items():
        if k not in v:
            ck.true(f"line '{k}' is missing", False)
        else:
            ck.close(k, np.ravel(v[k]), np.ravel(val))
    return ck.finish()


def ints(lines, prefix):
    """The integers in brackets of the line starting with prefix ('kept = [0 5]')."""
    for line in lines:
        if line.startswith(prefix):
            return [int(s) for s in line.split("[")[1].strip("] ").split()]
    raise SystemExit(f"no line starting with '{prefix}'")


def number_after(lines, prefix, pattern=r"(-?[0-9.]+(?:e[-+][0-9]+)?)"):
    for line in lines:
        if line.startswith(prefix):
            m = re.match(pattern, line[len(prefix):].strip())
            if m:
                return float(m.group(1))
    raise SystemExit(f"no number after '{prefix}'")


def check_prune_by_hand(path):
    v, lines = parse(path)
    ck = Checker()

    def layer(prefix):
        rows = lambda name: np.array([v[k].ravel() for k in sorted(
            (k for k in v if re.fullmatch(re.escape(prefix + name) + r"\[ ?\d+\] [ifgo]\d+", k)),
            key=lambda k: int(k[len(prefix + name) + 1:].split("]")[0]))])
        W_out = np.array([v[k].ravel() for k in sorted(k for k in v if re.fullmatch(re.escape(prefix) + r"W_out\[\d\]", k))])
        return rows("W_ih"), rows("W_hh"), v[prefix + "b"].ravel(), W_out, v[prefix + "b_out"].ravel()

    W_ih, W_hh, b, W_out, b_out = layer("")
    H, F = W_hh.shape[1], W_ih.shape[1]
    ck.true("6 units, 2 inputs, 2 classes", (H, F, W_out.shape[0]) == (6, 2, 2) and W_ih.shape[0] == 4 * H)

    # 1-2. spectrum, energy, keep count
    cov = np.array([v[f"cov[{j}]"].ravel() for j in range(H)])
    ck.close("covariance symmetric", cov, cov.T, 0)
    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
    ck.close("eigenvalues of the printed covariance", v["eig"].ravel(), np.maximum(eig, 0), 1e-7)
    frac = np.cumsum(eig) / eig.sum()
    ck.close("energy fractions", v["energy fraction C(k)/E, k = 1..6"].ravel(), frac, 1e-6)
    tau = number_after(lines, "tau = ")
    k = int(number_after(lines, "keep k = ", r"(\d+) of"))
    k_rule = max(1, int(np.argmax(frac >= tau)) + 1)  # the smallest k with C(k) >= tau E
    ck.true(f"keep count {k} is the energy rule's {k_rule} (tau {tau})", k == k_rule)

    # 3. unit vectors (docs/METHOD.md: u_j = W_ih rows j, H+j, 2H+j, 3H+j, then W_hh's), distance sums
    U = np.array([np.concatenate([W_ih[q * H + j] for q in range(4)] + [W_hh[q * H + j] for q in range(4)])
                  for j in range(H)])
    dist = np.linalg.norm(U[:, None, :] - U[None, :, :], axis=2)
    ck.close("distances", np.array([v[f"dist[{j}]"].ravel() for j in range(H)]), dist)
    score = dist.sum(axis=1)
    ck.close("scores (sum of distances)", v["score (sum of distances)"].ravel(), score, 1e-4)
    order = sorted(range(H), key=lambda j: (round(score[j], 9), j))
    ck.true(f"order {ints(lines, 'order (smallest score first) = ')} is ascending score {order}",
            ints(lines, "order (smallest score first) = ") == order)
    removed, kept = ints(lines, "removed (the "), ints(lines, "kept = ")
    ck.true(f"removed {removed} are the {H - k} smallest scores {order[:H - k]}", removed == order[:H - k])
    ck.true(f"kept {kept} are the others, ascending", kept == sorted(order[H - k:]))

    # 4. the shrunk layer holds the kept rows and columns, exactly
    s_ih, s_hh, s_b, s_out, s_bout = layer("small ")
    rows = [q * H + j for q in range(4) for j in kept]
    ck.close("small W_ih = kept rows", s_ih, W_ih[rows], 0)
    ck.close("small W_hh = kept rows and columns", s_hh, W_hh[np.ix_(rows, kept)], 0)
    ck.close("small b = kept entries", s_b, b[rows], 0)
    ck.close("small W_out = kept columns", s_out, W_out[:, kept], 0)
    ck.close("b_out unchanged", s_bout, b_out, 0)
    C = W_out.shape[0]
    n_params = lambda h: 4 * h * (F + h + 1) + C * (h + 1)
    ck.true("parameter counts", f"parameters {n_params(H)} -> {n_params(k)} " in "\n".join(lines))

    # the removal checks the program prints
    ck.true("removed units' h exactly 0", number_after(lines, "max |h masked| of the removed units, every step: ") == 0)
    ck.true("kept units' h equal", number_after(lines, "max |h masked - h shrunk| of the kept units, every step: ") < TOL)
    ck.true("masked and shrunk outputs equal", number_after(lines, "max |z masked - z shrunk|: ") < TOL)
    shown = [l for l in lines if l.startswith("sequence ")]
    ck.true("4 sequences shown", len(shown) == 4)
    for l in shown:
        z = [float(s) for s in re.findall(r"-?\d+\.\d+", l.split("masked")[1])]
        ck.close(f"masked = shrunk on '{l[:10]}'", z[:2], z[2:], TOL)
    ck.true("removal is exact: yes", "removal is exact: yes" in lines)
    return ck.finish()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("lstm_step", "prune_by_hand"):
        sys.exit(__doc__)
    sys.exit({"lstm_step": check_lstm_step, "prune_by_hand": check_prune_by_hand}[sys.argv[1]](sys.argv[2]))
