package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// progressThreshold is the size above which upload and read show a progress
// bar on a terminal without being asked to.
const progressThreshold = 8 << 20

// progressFlags are the --progress and --quiet flags of upload and read.
type progressFlags struct {
	force bool
	quiet bool
}

// register adds --progress and --quiet to fs.
func (p *progressFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&p.force, "progress", false, "show a progress bar on stderr whatever the size and terminal")
	fs.BoolVar(&p.quiet, "quiet", false, "never show a progress bar")
}

// show reports whether to draw a progress bar for a transfer of size bytes
// (negative when unknown) when stderr is a terminal or not.
func (p progressFlags) show(size int64, tty bool) bool {
	switch {
	case p.quiet:
		return false
	case p.force:
		return true
	default:
		return tty && size > progressThreshold
	}
}

// newProgress returns a progress bar of size bytes (negative when unknown,
// which draws a spinner) that writes to w, or nil when show says no bar.
// Every method of a nil *progress does nothing.
func (a *app) newProgress(p progressFlags, size int64, desc string) *progress {
	if !p.show(size, a.stderrTTY) {
		return nil
	}
	w := a.stderr
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetRenderBlankState(true),
	)
	return &progress{bar: bar}
}

// progress is a progress bar on stderr, or nothing when nil.
type progress struct {
	bar  *progressbar.ProgressBar
	done bool
}

// add advances the bar by n bytes.
func (p *progress) add(n int) {
	if p != nil {
		p.bar.Add(n)
	}
}

// finish fills the bar and ends its line.
func (p *progress) finish() {
	if p != nil && !p.done {
		p.done = true
		p.bar.Finish()
	}
}

// abort leaves the bar where it stopped and ends its line, so that an error
// message starts on a line of its own.
func (p *progress) abort() {
	if p != nil && !p.done {
		p.done = true
		p.bar.Exit()
	}
}

// protoJSON returns m as protojson with the proto field names ("size_bytes"),
// indented when indent is true and on one line otherwise. The whitespace is
// normalised, so the output is stable from one run to the next (protojson
// itself varies it on purpose).
func protoJSON(m proto.Message, indent bool) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	var buf bytes.Buffer
	if indent {
		err = json.Indent(&buf, raw, "", "  ")
	} else {
		err = json.Compact(&buf, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// printProto writes m to w as indented protojson.
func printProto(w io.Writer, m proto.Message) error {
	b, err := protoJSON(m, true)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// shortEnum returns the name of an enum value without its prefix, e.g.
// "CALL_RECORDING" for ARTIFACT_TYPE_CALL_RECORDING.
func shortEnum(name, prefix string) string {
	return strings.TrimPrefix(name, prefix)
}

// formatTime returns ts in RFC 3339 (UTC), or "-" when it is unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}
