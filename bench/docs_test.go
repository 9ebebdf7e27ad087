package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// notesMarker separates the generated part of docs/performance.md from the
// notes a human writes under it; make bench keeps those notes.
const notesMarker = "<!-- Notes below this line are written by people and kept by make bench. -->"

// method describes how each scenario is measured, for the document.
const method = `Every comparison runs its variants interleaved: one warm-up run of each
variant, not counted, then 5 counted rounds that run each variant once in an
order rotated by one per round (A B C, B C A, C A B, ...), each run after a
sync(2) so that none pays for the disk writeback of the one before. The table gives the
median, minimum and maximum of the counted runs; a ratio is the variant's
median over the baseline's median. Nothing here is a timed assertion: a missed
target is reported, not failed.

All servers are local processes on loopback on this one machine: MinIO A
(region us, plain), MinIO B (region de, plain), MinIO S (SSE-S3:
MINIO_KMS_SECRET_KEY and MINIO_KMS_AUTO_ENCRYPTION), MinIO N (plain) and MinIO
SN (SSE-S3), both started with --no-compat, local-kms, and the gateway
binary itself (` + "`sealgate serve --roles api`" + `, log level warn, audit off), so the
gateway's memory and allocations are its own. The benchmark client (gRPC and
minio-go) runs in the test process on the same cores.

1. **Throughput**: one artifact of each size uploaded and read back per run.
   *gateway*: gRPC UploadArtifact with size_bytes declared, 1 MiB chunks, then
   ReadArtifact (the gateway encrypts into MinIO A with the provider key and
   decrypts on read). *direct*: minio-go PutObject/GetObject of the same bytes
   to MinIO A, unencrypted, with miniostore's exact client settings and
   request shape (transport, Signature V4 without payload hash, one streaming
   PUT with a trailing full-object CRC32C, no CRC asked for on read) and, like the
   gateway's pipe, a body that is not an io.ReaderAt. *sse*: the same as
   direct against MinIO S, which encrypts with SSE-S3. MiB/s is plaintext
   MiB over wall time. CPU: user plus system CPU seconds of each process over
   each upload and each download (/proc/PID/stat of the gateway and of the
   MinIO it talks to, getrusage of the benchmark client), per GiB of
   plaintext; *server* is the gateway plus its store (for direct and sse,
   the store alone). Only the first size (256 MiB) has a warm-up round: 1 GiB
   runs the same code paths, and skipping its warm-up saves about 40 s of
   the time budget. ` + "`SEALGATE_BENCH_PROFILE=DIR make bench`" + ` also saves
   10-second CPU profiles of the gateway uploading and reading the largest
   size over and over (DIR/upload.pprof, DIR/download.pprof, with the
   binary).
1b. **Throughput, MinIO --no-compat**: scenario 1 at the first size, with a
   second gateway whose region us is MinIO N, *direct* against MinIO N and
   *sse* against MinIO SN: every store skips the MD5 of what it stores, as
   docs/operations.md suggests for a MinIO that serves only sealgate.
   *sse, default MinIO* (MinIO S, with the MD5) runs in the same rounds,
   as what a user would run instead, and is reported without a target.
   *relay* and *relay + AES-GCM* (bench/relay_test.go) are the floor of any
   gateway that runs as its own process: the test binary run again as a
   process that only moves the bytes between a TCP connection from the
   benchmark and MinIO N, with the gateway's minio-go settings, 1 MiB reads
   and writes, and (+ AES-GCM) a seal or open of each 256 KiB segment; no
   gRPC, no envelope header, no authentication, no control store. Its CPU
   is reported in the gateway's rows, without targets.
2. **Small artifacts**: runs of N uploads of 4 KiB or 64 KiB by 1 worker
   (N = 200) or 64 concurrent workers (N = 1,000); *gateway* (gRPC, size
   declared, one chunk) against *direct* PutObject to MinIO A (one key
   prefix, as the gateway's staging area). ops/s is N over the run's wall
   time; p50 and p99 are computed per run (nearest rank over that run's N
   latencies), and the table gives the median, min and max of those per-run
   percentiles.
3. **Memory**: a fresh gateway process takes one 4 KiB upload (so that
   connections and caches count as idle), then 8 concurrent 1 GiB uploads
   (1 MiB chunks, size declared). Per stream: (VmHWM of /proc/PID/status
   after the uploads minus VmRSS at idle before them) / 8. Allocation: the
   growth of the gateway's go_memstats_alloc_bytes_total over the uploads,
   divided by the bytes uploaded.
4. **KMS calls**: a fresh gateway, account demo switched to a customer key in
   local-kms (KEY_MODE_CUSTOMER, aws-kms://), 10,000 uploads of 4 KiB by 16
   workers; calls are the growth of sealgate_key_calls_total{scheme="aws-kms"}
   (every op and outcome). The bound is one call per revocation_bound (30 s)
   elapsed, plus one.
5. **Mover**: 8 artifacts of 64 MiB (512 MiB) staged in us for storage
   region de, moved from MinIO A to MinIO B by an in-process
   gateway/mover.Mover Pass with 4 workers (streamed copy with its own CRC-32C
   of the source, the copy verified against the CRC-32C that MinIO checked
   on write, delete of the staged copy), against a plain copy of the same
   objects: GetObject from A then PutObject to B with the same minio-go
   settings, also 4 workers. Before each run, untimed, the staged objects are
   restored by a server-side copy from a template prefix in A, and the
   destination objects in B are removed, so each run moves the same volume.
6. **Envelope encryption**: testing.Benchmark in the test process, one
   goroutine each: keys.Seal of 32 MiB in 64 KiB writes at the default segment
   size with a keys/local provider key (BenchmarkSealSegmentSize's loop),
   against AES-256-GCM Seal of the same bytes in 64 KiB chunks
   (BenchmarkRawAESGCM).`

// firstNotes seeds the human notes of docs/performance.md until someone
// replaces them: what profiling found while the harness was written.
const firstNotes = `
_For each missed target: what limits it, with evidence (pprof, metrics), and
what would close the gap. The notes below come from profiling an in-process
gateway on MinIO during the harness's smoke run (2 cores, 256 MiB and 4 KiB
uploads); check them against the table above._

- **Allocations on upload (about 1.2 B/B against < 0.1).** pprof alloc_space:
  google.golang.org/protobuf/internal/impl.consumeBytes, under
  writeUpload -> RecvMsg, allocates a fresh []byte for every 1 MiB chunk the
  server receives (the proto codec copies the chunk out of gRPC's pooled
  receive buffer): about 1 B/B by itself. The rest is minio-go's 8 MiB part
  buffer per upload and gRPC buffers. Meeting 0.1 B/B needs a codec for
  UploadArtifactRequest that aliases gRPC's mem.BufferSlice (or a pooled
  chunk buffer) instead of the stock proto codec. The fresh 1 MiB allocations
  are not free in CPU either: the memmove in consumeBytes, onto newly
  faulted pages, was the largest item of the gateway's upload CPU profile.
- **Small uploads (p50 1.5x to 2x direct).** pprof CPU of 4 KiB uploads at
  concurrency 64: about 40% of the gateway's CPU is runtime.memclrNoHeapPointers
  under miniostore.(*Bucket).Put, which allocates a zeroed 1 MiB buffer
  (smallObjectSize) for every object, even a 4 KiB one of declared size
  (make([]byte, smallObjectSize) then buf[:size]); allocating only the
  declared size, or pooling the buffer, removes it. Next: the JWT's Ed25519
  verify on every call (about 9%), the account settings read from the control
  store on every upload (about 6%), and tink's per-writer segment buffers
  (256 KiB segments for a 4 KiB artifact, about 6%).
- **Large download (about 0.5x direct).** The gateway process used well under
  one core while reading (CPU samples about 40% of wall time): the read path is
  serial (one GET body, decrypt one 256 KiB segment, one 256 KiB gRPC message)
  with no read-ahead, so MinIO, decryption and the gRPC send do not overlap;
  gRPC's flow-control windows are the defaults. Read-ahead of the next segment
  and larger gRPC windows are the first things to try.
- **Large upload (about 0.6x to 0.8x direct).** The chunk copy above, then
  one 8 MiB part at a time to MinIO through the pipe, as the direct baseline
  does; minio-go can send parts concurrently (ConcurrentStreamParts) if the
  gap stays after the copies are gone.
- **Memory per stream** was 26 to 35 MiB in smoke runs: one 8 MiB
  part buffer, gRPC receive windows and 1 MiB chunks in flight, doubled by
  GOGC=100 on a heap that allocates a chunk per message.
`

// machine describes the host: CPUs, memory, kernel, Go and server versions.
func machine() string {
	var b strings.Builder
	model := "unknown"
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(cpu), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	fmt.Fprintf(&b, "- CPU: %s, %d logical CPUs (nproc), GOMAXPROCS %d\n", model, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if mem, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(mem), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(rest), &kb)
				fmt.Fprintf(&b, "- Memory: %.1f GiB\n", float64(kb)*kib/gib)
			}
		}
	}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		fmt.Fprintf(&b, "- Kernel: Linux %s (%s)\n", strings.TrimSpace(string(rel)), runtime.GOARCH)
	}
	fmt.Fprintf(&b, "- Go: %s\n", runtime.Version())
	for _, tool := range []string{"minio", "local-kms"} {
		if v := toolVersion(tool); v != "" {
			fmt.Fprintf(&b, "- %s: %s\n", tool, v)
		}
	}
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	return b.String()
}

// toolVersion returns the pinned module version scripts/tools.sh stamped
// for tool, or "".
func toolVersion(tool string) string {
	dir := os.Getenv("SEALGATE_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join(repoRoot(), ".tools", "bin")
	}
	b, err := os.ReadFile(filepath.Join(dir, "."+tool+".version"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// document renders docs/performance.md: machine, how to reproduce, method,
// the table, the missed targets, and the notes kept from the previous file.
func document(r *report, p plan, elapsed time.Duration, keptNotes string) string {
	var b strings.Builder
	b.WriteString("# Performance\n\n")
	b.WriteString("Generated by `make bench` (bench/perf_test.go); do not edit above the notes marker.\n")
	if p.quick {
		b.WriteString("\n**Quick smoke run (SEALGATE_BENCH_QUICK=1): sizes and counts are about 16 times smaller; " +
			"these numbers are not the reference results.**\n")
	}
	b.WriteString("\n## Machine\n\n")
	b.WriteString(machine())
	fmt.Fprintf(&b, "- Harness wall time: %s\n", elapsed.Round(time.Second))
	b.WriteString("\n## How to reproduce\n\n```\nmake bench\n```\n\n")
	b.WriteString("It needs only Go: scripts/bench.sh installs MinIO and local-kms into .tools/bin " +
		"with scripts/tools.sh, then runs\n`SEALGATE_BENCH=1 go test ./bench -run TestPerformance -count=1 -timeout 40m -v`, " +
		"which starts every server it needs\nand rewrites this file. `SEALGATE_BENCH_QUICK=1 make bench` is a smoke run " +
		"about 16 times smaller that writes\nits table to a temporary file instead.\n")
	b.WriteString("\n## Method\n\n" + method + "\n")
	b.WriteString("\n## Results\n\n" + r.table())
	b.WriteString("\n## What limits the rest\n\nTargets missed in this run (generated):\n\n")
	b.WriteString(r.missedTargets())
	b.WriteString("\n" + notesMarker + "\n")
	if keptNotes == "" {
		keptNotes = firstNotes
	}
	b.WriteString(keptNotes)
	return b.String()
}

// keptNotes returns what follows the notes marker in the file at path, or ""
// when the file or the marker is missing.
func keptNotes(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	_, after, ok := strings.Cut(string(b), notesMarker+"\n")
	if !ok {
		return ""
	}
	return after
}
