package cli

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func newTestEditor(width int) (*lineEditor, *strings.Builder) {
	var out strings.Builder
	return newLineEditor(&out, "> ", func() int { return width }), &out
}

func TestLineEditorKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []string // fed one after the other
		want []string // the lines entered
		line string   // the line being typed at the end
		pos  int
	}{
		{"plain", []string{"hello\r"}, []string{"hello"}, "", 0},
		{"CR LF is one Enter", []string{"a\r\nb\n"}, []string{"a", "b"}, "", 0},
		{"backspace", []string{"helxy\x7f\x7flo\r"}, []string{"hello"}, "", 0},
		{"arrows and insert", []string{"hlo\x1b[D\x1b[Del\r"}, []string{"hello"}, "", 0},
		{"home end", []string{"bc\x1b[Ha\x1b[Fd"}, nil, "abcd", 4},
		{"ctrl-a ctrl-e", []string{"bc\x01a\x05d"}, nil, "abcd", 4},
		{"ctrl-b ctrl-f", []string{"ac\x02b\x06d"}, nil, "abcd", 4},
		{"delete", []string{"abc\x01\x1b[3~"}, nil, "bc", 0},
		{"ctrl-u", []string{"abc def\x02\x02\x15"}, nil, "ef", 0},
		{"ctrl-k", []string{"abc def\x01\x06\x0b"}, nil, "a", 1},
		{"ctrl-w", []string{"add [1, 2]  \x17"}, nil, "add [1, ", 8},
		{"escape split across reads", []string{"ab\x1b", "[", "D", "X"}, nil, "aXb", 2},
		{"rune split across reads", []string{"h\xc3", "\xa9llo\r"}, []string{"héllo"}, "", 0},
		{"invalid UTF-8 dropped", []string{"a\xffb\r"}, []string{"ab"}, "", 0},
		{"other controls dropped", []string{"a\x07\x1bxb\x1bOZ\r"}, []string{"ab"}, "", 0},
		{"tab is a space", []string{"a\tb\r"}, []string{"a b"}, "", 0},
		{"history", []string{"one\rtwo\r\x1b[A\x1b[A\x1b[B\r"}, []string{"one", "two", "two"}, "", 0},
		{"history keeps the draft", []string{"one\rdra\x10\x0e"}, []string{"one"}, "dra", 3},
		{"history ends", []string{"one\r\x1b[A\x1b[A\x1b[A"}, []string{"one"}, "one", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestEditor(80)
			var got []string
			for _, k := range tt.keys {
				lines, eof := l.Feed([]byte(k))
				if eof {
					t.Fatal("eof")
				}
				got = append(got, lines...)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || string(l.buf) != tt.line || l.pos != tt.pos {
				t.Errorf("lines %q, line %q at %d; want %q, %q at %d", got, string(l.buf), l.pos, tt.want, tt.line, tt.pos)
			}
		})
	}
}

func TestLineEditorEOF(t *testing.T) {
	l, _ := newTestEditor(80)
	if lines, eof := l.Feed([]byte("ab\x01\x04")); eof || len(lines) != 0 || string(l.buf) != "b" {
		t.Errorf("Ctrl-D on a line: eof %v, line %q; want a delete", eof, string(l.buf))
	}
	l.Feed([]byte("\x05\x15"))
	if lines, eof := l.Feed([]byte("x\r\x04ignored\r")); !eof || len(lines) != 1 || lines[0] != "x" {
		t.Errorf("Ctrl-D on an empty line: eof %v, lines %q", eof, lines)
	}
}

func TestLineEditorBounds(t *testing.T) {
	l := newLineEditor(io.Discard, "> ", func() int { return 80 })
	for i := range maxHistory + 10 {
		l.Feed([]byte(fmt.Sprintf("line %d\r", i)))
	}
	l.Feed([]byte("\r   \r")) // blank lines are not remembered
	if len(l.history) != maxHistory || l.history[0] != "line 10" {
		t.Errorf("history of %d, first %q", len(l.history), l.history[0])
	}
	l.Feed([]byte("\x1b[Ax\r")) // the same line twice is remembered once
	if last := l.history[len(l.history)-1]; last != "line 109x" {
		t.Errorf("last = %q", last)
	}
	long := strings.Repeat("y", maxLine+5)
	l.Feed([]byte(long))
	if len(l.buf) != maxLine {
		t.Errorf("line of %d runes, want at most %d", len(l.buf), maxLine)
	}
	// An escape sequence without end is dropped, not kept.
	l.Feed([]byte("\x15\x1b[" + strings.Repeat("1", 40) + "z"))
	if len(l.pending) != 0 || string(l.buf) != strings.Repeat("1", 40-16)+"z" {
		t.Errorf("pending %q, line %q", l.pending, string(l.buf))
	}
}

// TestLineEditorDraws: what the terminal gets.
func TestLineEditorDraws(t *testing.T) {
	l, out := newTestEditor(80)
	l.Feed([]byte("ab\x1b[D"))
	if got, want := out.String(), "\r> a\x1b[K\r> ab\x1b[K\r> ab\x1b[K\x1b[1D"; got != want {
		t.Errorf("drawn %q, want %q", got, want)
	}
	out.Reset()
	l.Above("< text: hi\nthere\n")
	if got, want := out.String(), "\r\x1b[K< text: hi\r\nthere\r\n\r> ab\x1b[K\x1b[1D"; got != want {
		t.Errorf("above: %q, want %q", got, want)
	}
	out.Reset()
	l.Close()
	if out.String() != "\r\x1b[K" {
		t.Errorf("close: %q", out.String())
	}
}

// TestLineEditorScrolls: a line longer than the terminal scrolls sideways,
// keeping the cursor on screen.
func TestLineEditorScrolls(t *testing.T) {
	l, out := newTestEditor(12) // "> " and 9 runes of room
	l.Feed([]byte("abcdefghijklmn"))
	last := func() string {
		s := out.String()
		return s[strings.LastIndex(s, "\r"):]
	}
	if got, want := last(), "\r> fghijklmn\x1b[K"; got != want {
		t.Errorf("at the end: %q, want %q", got, want)
	}
	l.Feed([]byte("\x01"))
	if got, want := last(), "\r> abcdefghi\x1b[K\x1b[9D"; got != want {
		t.Errorf("at home: %q, want %q", got, want)
	}
}
