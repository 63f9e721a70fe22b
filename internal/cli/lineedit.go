package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxHistory bounds the lines the prompt remembers (up and down arrows).
const maxHistory = 100

// maxLine bounds a line being typed, in runes; keys beyond are dropped.
const maxLine = 1 << 20

// lineEditor is connect's prompt on a terminal in raw mode: it keeps the
// line being typed, so that a message arriving is printed above it (Above)
// and the line drawn again below, never into it. Keys: printable text,
// Enter, Backspace, Delete, left and right arrows, Home/End (and Ctrl-A,
// Ctrl-E, Ctrl-B, Ctrl-F), up and down arrows for the history (and Ctrl-P,
// Ctrl-N), Ctrl-U and Ctrl-K (kill to the start or the end), Ctrl-W (the
// word before), Ctrl-L (clear the screen), Ctrl-D (end of input on an empty
// line). A line longer than the terminal scrolls sideways.
//
// It is not safe for concurrent use: connect's session goroutine owns it.
type lineEditor struct {
	out    io.Writer  // the terminal
	prompt string     // printable ASCII
	width  func() int // the terminal's width in columns

	buf    []rune
	pos    int // the cursor, in buf
	scroll int // the first rune of buf on screen

	history []string
	hpos    int    // in history; len(history): the line being typed
	draft   []rune // the line being typed while browsing the history

	pending []byte // an escape sequence or a rune not yet complete
}

func newLineEditor(out io.Writer, prompt string, width func() int) *lineEditor {
	return &lineEditor{out: out, prompt: prompt, width: width}
}

// Feed handles keys typed: it returns the lines entered, and eof when
// Ctrl-D was typed on an empty line (keys after it are dropped).
func (l *lineEditor) Feed(keys []byte) (lines []string, eof bool) {
	b := append(l.pending, keys...)
	l.pending = nil
	for len(b) > 0 {
		if b[0] == 0x1b { // an escape sequence
			n, complete := escapeLen(b)
			if !complete {
				l.pending = append([]byte(nil), b...)
				break
			}
			l.escape(b[:n])
			b = b[n:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 && !utf8.FullRune(b) {
			l.pending = append([]byte(nil), b...) // the rest comes with the next read
			break
		}
		b = b[size:]
		switch r {
		case '\r', '\n':
			line := string(l.buf)
			l.remember(line)
			l.buf, l.pos, l.scroll = l.buf[:0], 0, 0
			io.WriteString(l.out, "\r\n")
			l.draw()
			lines = append(lines, line)
			if r == '\r' && len(b) > 0 && b[0] == '\n' {
				b = b[1:] // CR LF: one Enter
			}
		case 0x04: // Ctrl-D
			if len(l.buf) == 0 {
				return lines, true
			}
			l.delete()
		case 0x7f, 0x08: // Backspace
			if l.pos > 0 {
				l.pos--
				l.delete()
			}
		case 0x01: // Ctrl-A
			l.move(0)
		case 0x05: // Ctrl-E
			l.move(len(l.buf))
		case 0x02: // Ctrl-B
			l.move(l.pos - 1)
		case 0x06: // Ctrl-F
			l.move(l.pos + 1)
		case 0x10: // Ctrl-P
			l.browse(-1)
		case 0x0e: // Ctrl-N
			l.browse(+1)
		case 0x15: // Ctrl-U
			l.buf = append(l.buf[:0], l.buf[l.pos:]...)
			l.pos = 0
			l.draw()
		case 0x0b: // Ctrl-K
			l.buf = l.buf[:l.pos]
			l.draw()
		case 0x17: // Ctrl-W
			i := l.pos
			for i > 0 && l.buf[i-1] == ' ' {
				i--
			}
			for i > 0 && l.buf[i-1] != ' ' {
				i--
			}
			l.buf = append(l.buf[:i], l.buf[l.pos:]...)
			l.pos = i
			l.draw()
		case 0x0c: // Ctrl-L
			io.WriteString(l.out, "\033[H\033[2J")
			l.draw()
		case '\t':
			l.insert(' ')
		default:
			if r >= 0x20 && r != utf8.RuneError {
				l.insert(r)
			}
		}
	}
	return lines, false
}

// escapeLen returns the length of the escape sequence b starts with (ESC [
// params final, ESC O final, or ESC and one byte), and false when b ends
// before it does.
func escapeLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch b[1] {
	case '[':
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i + 1, true
			}
			if i > 16 {
				return i + 1, true // not a sequence we know: drop it
			}
		}
		return 0, false
	case 'O':
		if len(b) < 3 {
			return 0, false
		}
		return 3, true
	}
	return 2, true // Alt and a key: dropped
}

func (l *lineEditor) escape(seq []byte) {
	switch string(seq) {
	case "\033[A", "\033OA":
		l.browse(-1)
	case "\033[B", "\033OB":
		l.browse(+1)
	case "\033[C", "\033OC":
		l.move(l.pos + 1)
	case "\033[D", "\033OD":
		l.move(l.pos - 1)
	case "\033[H", "\033OH", "\033[1~", "\033[7~":
		l.move(0)
	case "\033[F", "\033OF", "\033[4~", "\033[8~":
		l.move(len(l.buf))
	case "\033[3~":
		l.delete()
	}
}

func (l *lineEditor) insert(r rune) {
	if len(l.buf) >= maxLine {
		return
	}
	l.buf = append(l.buf, 0)
	copy(l.buf[l.pos+1:], l.buf[l.pos:])
	l.buf[l.pos] = r
	l.pos++
	l.draw()
}

// delete removes the rune under the cursor.
func (l *lineEditor) delete() {
	if l.pos < len(l.buf) {
		l.buf = append(l.buf[:l.pos], l.buf[l.pos+1:]...)
		l.draw()
	}
}

func (l *lineEditor) move(pos int) {
	l.pos = min(max(pos, 0), len(l.buf))
	l.draw()
}

func (l *lineEditor) remember(line string) {
	l.hpos = len(l.history)
	if strings.TrimSpace(line) == "" || (len(l.history) > 0 && l.history[len(l.history)-1] == line) {
		return
	}
	if len(l.history) == maxHistory {
		l.history = append(l.history[:0], l.history[1:]...)
	}
	l.history = append(l.history, line)
	l.hpos = len(l.history)
}

// browse goes up (-1) or down (+1) the history.
func (l *lineEditor) browse(dir int) {
	next := l.hpos + dir
	if next < 0 || next > len(l.history) {
		return
	}
	if l.hpos == len(l.history) {
		l.draft = append(l.draft[:0], l.buf...)
	}
	l.hpos = next
	if next == len(l.history) {
		l.buf = append(l.buf[:0], l.draft...)
	} else {
		l.buf = append(l.buf[:0], []rune(l.history[next])...)
	}
	l.pos = len(l.buf)
	l.draw()
}

// draw draws the prompt and the part of the line that fits, and puts the
// cursor where it is in the line.
func (l *lineEditor) draw() {
	room := max(l.width()-len(l.prompt)-1, 1)
	if l.pos < l.scroll {
		l.scroll = l.pos
	}
	if l.pos > l.scroll+room {
		l.scroll = l.pos - room
	}
	l.scroll = min(l.scroll, max(len(l.buf)-room, 0))
	l.scroll = min(l.scroll, l.pos)
	end := min(len(l.buf), l.scroll+room)
	var b strings.Builder
	b.WriteString("\r")
	b.WriteString(l.prompt)
	b.WriteString(string(l.buf[l.scroll:end]))
	b.WriteString("\033[K")
	if back := end - l.pos; back > 0 {
		fmt.Fprintf(&b, "\033[%dD", back)
	}
	io.WriteString(l.out, b.String())
}

// Above prints text (one or more lines) above the prompt, which it draws
// again below, with the line being typed as it was.
func (l *lineEditor) Above(text string) {
	text = strings.TrimSuffix(text, "\n")
	io.WriteString(l.out, "\r\033[K"+strings.ReplaceAll(text, "\n", "\r\n")+"\r\n")
	l.draw()
}

// Close clears the prompt's line, leaving the cursor at its start.
func (l *lineEditor) Close() { io.WriteString(l.out, "\r\033[K") }
