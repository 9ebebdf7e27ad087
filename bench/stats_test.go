package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// variant is one side of a comparison. run performs one measured run and
// returns its metrics by name (for example "upload MiB/s"); round is -1 for
// the warm-up and 0, 1, ... for the counted rounds.
type variant struct {
	name string
	run  func(round int) (map[string]float64, error)
}

// samples holds counted measurements: variant, then metric, then one value
// per counted round.
type samples map[string]map[string][]float64

// get returns the samples of one metric of one variant.
func (s samples) get(variant, metric string) []float64 { return s[variant][metric] }

// interleave runs one warm-up of every variant (unless warm is false: the
// same code paths were just warmed up by a smaller size), then rounds counted
// rounds that each run every variant once, A B C then B C A and so on, so
// that no variant always runs first or right after the same neighbour. It
// returns the counted samples, or the first error with the variant and round
// that failed.
func interleave(t *testing.T, label string, warm bool, rounds int, vs []variant) (samples, error) {
	t.Helper()
	out := samples{}
	for _, v := range vs {
		out[v.name] = map[string][]float64{}
	}
	first := -1
	if !warm {
		first = 0
	}
	for round := first; round < rounds; round++ {
		order := make([]variant, len(vs))
		for i := range vs {
			order[i] = vs[(i+max(round, 0))%len(vs)]
		}
		var line []string
		for _, v := range order {
			// Untimed: flush dirty pages, so that no run pays (in time or
			// in a MinIO's CPU, which the kernel charges for writeback
			// once dirty memory is high) for the writes of the run before.
			syscall.Sync()
			m, err := v.run(round)
			if err != nil {
				return nil, fmt.Errorf("%s: %s, round %d: %w", label, v.name, round, err)
			}
			line = append(line, fmt.Sprintf("%s %s", v.name, formatMetrics(m)))
			if round < 0 {
				continue
			}
			for k, x := range m {
				out[v.name][k] = append(out[v.name][k], x)
			}
		}
		what := fmt.Sprintf("round %d", round+1)
		if round < 0 {
			what = "warm-up"
		}
		t.Logf("%s %s: %s", label, what, strings.Join(line, "; "))
	}
	return out, nil
}

// formatMetrics renders a run's metrics in a stable order for the log.
func formatMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, m[k])
	}
	return strings.Join(parts, " ")
}

// median returns the median of xs (the mean of the middle two for an even
// count), or NaN when xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// minMax returns the smallest and largest of xs, NaN when xs is empty.
func minMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method, in milliseconds; it sorts ds in place.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	rank = min(max(rank, 1), len(ds))
	return float64(ds[rank-1]) / float64(time.Millisecond)
}

// mibPerSec returns n bytes over d in MiB/s.
func mibPerSec(n int64, d time.Duration) float64 {
	return float64(n) / mib / d.Seconds()
}

// sizeName renders a byte count as "4 KiB", "256 MiB" or "1 GiB".
func sizeName(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib && n%kib == 0:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d B", n)
}
