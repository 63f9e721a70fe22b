package promtext

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Writer writes metric families in the text exposition format into a
// buffer: for each family, Header and then its samples, all together.
type Writer struct {
	buf bytes.Buffer
}

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// Header writes a family's HELP and TYPE lines.
func (w *Writer) Header(f Family) {
	w.buf.WriteString("# HELP ")
	w.buf.WriteString(f.Name)
	w.buf.WriteByte(' ')
	w.buf.WriteString(helpEscaper.Replace(f.Help))
	w.buf.WriteString("\n# TYPE ")
	w.buf.WriteString(f.Name)
	w.buf.WriteByte(' ')
	w.buf.WriteString(f.Type)
	w.buf.WriteByte('\n')
}

// Sample writes one sample of f: its name with suffix (such as "_bucket"),
// its labels (f.Labels with values, in order, then extra name/value pairs)
// and v.
func (w *Writer) Sample(f Family, suffix string, v float64, values []string, extra ...string) {
	w.buf.WriteString(f.Name)
	w.buf.WriteString(suffix)
	n := 0
	label := func(name, value string) {
		if n == 0 {
			w.buf.WriteByte('{')
		} else {
			w.buf.WriteByte(',')
		}
		n++
		w.buf.WriteString(name)
		w.buf.WriteString(`="`)
		w.buf.WriteString(valueEscaper.Replace(value))
		w.buf.WriteByte('"')
	}
	for i, name := range f.Labels {
		label(name, values[i])
	}
	for i := 0; i+1 < len(extra); i += 2 {
		label(extra[i], extra[i+1])
	}
	if n > 0 {
		w.buf.WriteByte('}')
	}
	w.buf.WriteByte(' ')
	w.buf.WriteString(formatFloat(v))
	w.buf.WriteByte('\n')
}

// Histogram writes the samples of one histogram of f: bounds (ascending,
// in seconds) with counts per bucket, not cumulative, one more than bounds
// (the last for values above every bound), and the sum in seconds.
func (w *Writer) Histogram(f Family, bounds []float64, counts []uint64, sum float64, values []string) {
	var cum uint64
	for i, b := range bounds {
		cum += counts[i]
		w.Sample(f, "_bucket", float64(cum), values, "le", formatFloat(b))
	}
	if len(counts) > len(bounds) {
		cum += counts[len(bounds)]
	}
	w.Sample(f, "_bucket", float64(cum), values, "le", "+Inf")
	w.Sample(f, "_sum", sum, values)
	w.Sample(f, "_count", float64(cum), values)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
