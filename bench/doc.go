// Package bench holds sealgate's performance harness: one test,
// TestPerformance (perf_test.go), that starts its own MinIO servers and
// local-kms as local processes, runs the gateway binary as a separate
// process, measures it against plain MinIO baselines with interleaved runs,
// and prints one markdown table of medians, minima, maxima and ratios
// against the targets of the performance issue.
//
// The test is skipped unless SEALGATE_BENCH=1, so `go test ./...` passes
// over it in a moment. Run it with
//
//	make bench
//
// which installs MinIO and local-kms with scripts/tools.sh and writes the
// table, the machine description and how to reproduce it to
// docs/performance.md. SEALGATE_BENCH_QUICK=1 shrinks every size and count
// about 16 times for a smoke run and writes the table to a temporary file
// instead of docs/performance.md.
//
// The package has no code outside its tests; this file only documents it.
package bench
