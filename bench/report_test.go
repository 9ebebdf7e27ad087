package bench

import (
	"fmt"
	"math"
	"strings"
	"sync"
)

// report collects the rows of the results table and the targets missed.
type report struct {
	mu     sync.Mutex
	rows   []*row
	missed []string
}

// row is one metric of one variant of a scenario, with its comparisons.
type row struct {
	scenario, metric, variant string
	unit                      string
	samples                   []float64
	ratios, targets, met      []string
	rep                       *report
}

// add appends a row of counted samples xs measured in unit.
func (r *report) add(scenario, metric, variant, unit string, xs []float64) *row {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &row{scenario: scenario, metric: metric, variant: variant, unit: unit, samples: xs, rep: r}
	r.rows = append(r.rows, w)
	return w
}

// median returns the row's median.
func (w *row) median() float64 { return median(w.samples) }

// baseline marks the row as the baseline the others compare against.
func (w *row) baseline() *row {
	w.ratios = append(w.ratios, "baseline")
	return w
}

// vs compares the row's median with base's as a ratio. op is ">=" or ">"
// (higher is better) or "<=" or "<" (lower is better); want is the target ratio, or 0 for a
// ratio reported without a target.
func (w *row) vs(base *row, op string, want float64) *row {
	ratio := w.median() / base.median()
	w.ratios = append(w.ratios, fmt.Sprintf("%.2fx %s", ratio, base.variant))
	if want == 0 {
		return w
	}
	w.targets = append(w.targets, fmt.Sprintf("%s %.2fx %s", op, want, base.variant))
	w.judge(op, ratio, want, fmt.Sprintf("%.2fx %s", ratio, base.variant), fmt.Sprintf("%.2fx", math.Abs(want-ratio)))
	return w
}

// limit checks the row's median against an absolute bound, described by
// what (for example "32 MiB per stream").
func (w *row) limit(op string, want float64, what string) *row {
	m := w.median()
	w.targets = append(w.targets, fmt.Sprintf("%s %s", op, what))
	w.judge(op, m, want, formatValue(w.unit, m)+" "+w.unit, formatValue(w.unit, math.Abs(want-m))+" "+w.unit)
	return w
}

// judge records whether got meets op want, and the gap when it does not.
func (w *row) judge(op string, got, want float64, measured, gap string) {
	var ok bool
	side := "short"
	switch op {
	case ">":
		ok = got > want
	case ">=":
		ok = got >= want
	case "<":
		ok, side = got < want, "over"
	default: // "<="
		ok, side = got <= want, "over"
	}
	if math.IsNaN(got) {
		ok = false
	}
	if ok {
		w.met = append(w.met, "yes")
		return
	}
	w.met = append(w.met, fmt.Sprintf("**no**: %s %s", gap, side))
	w.rep.mu.Lock()
	defer w.rep.mu.Unlock()
	w.rep.missed = append(w.rep.missed, fmt.Sprintf("%s, %s, %s: measured %s, target %s (%s %s).",
		w.scenario, w.metric, w.variant, measured, w.targets[len(w.targets)-1], gap, side))
}

// formatValue renders v with the precision its unit deserves.
func formatValue(unit string, v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	switch unit {
	case "ops/s", "calls", "uploads":
		return fmt.Sprintf("%.0f", v)
	case "ms":
		return fmt.Sprintf("%.2f", v)
	case "B/B":
		return fmt.Sprintf("%.4f", v)
	case "s/GiB":
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// table renders the rows as one markdown table.
func (r *report) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| scenario | metric | variant | median | min | max | ratio vs baseline | target | met? |\n")
	b.WriteString("|---|---|---|--:|--:|--:|---|---|---|\n")
	dash := func(xs []string) string {
		if len(xs) == 0 {
			return "–"
		}
		return strings.Join(xs, "; ")
	}
	for _, w := range r.rows {
		lo, hi := minMax(w.samples)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			w.scenario, w.metric+" ("+w.unit+")", w.variant,
			formatValue(w.unit, w.median()), formatValue(w.unit, lo), formatValue(w.unit, hi),
			dash(w.ratios), dash(w.targets), dash(w.met))
	}
	return b.String()
}

// missedTargets lists the targets not met, one markdown bullet each.
func (r *report) missedTargets() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.missed) == 0 {
		return "Every target was met in this run.\n"
	}
	var b strings.Builder
	for _, m := range r.missed {
		b.WriteString("- " + m + "\n")
	}
	return b.String()
}
