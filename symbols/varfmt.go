package symbols

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// printer formats values the way gdb prints C values in bt and bt full.
type printer struct {
	s    *Set
	mem  MemoryReader
	opts *ValueOptions
	x    *dwarfIndex
}

// typeAt returns the type DIE at off, nil when it cannot be read.
func (p *printer) typeAt(off dwarf.Offset) (t dwarf.Type) {
	vs := &p.x.vars
	if t, ok := vs.types[off]; ok {
		return t
	}
	defer func() {
		if recover() != nil {
			t = nil
		}
		if vs.types == nil {
			vs.types = make(map[dwarf.Offset]dwarf.Type)
		}
		vs.types[off] = t
	}()
	t, err := p.x.d.Type(off)
	if err != nil {
		return nil
	}
	return t
}

// strip removes typedefs and qualifiers.
func strip(t dwarf.Type) dwarf.Type {
	for i := 0; i < 16; i++ {
		switch u := t.(type) {
		case *dwarf.TypedefType:
			t = u.Type
		case *dwarf.QualType:
			t = u.Type
		default:
			return t
		}
	}
	return t
}

// typeSize returns t's size in bytes, 8 when unknown.
func typeSize(t dwarf.Type) int {
	if t == nil {
		return 8
	}
	n := t.Size()
	if n <= 0 || n > 1<<20 {
		if _, ok := strip(t).(*dwarf.ArrayType); ok && n <= 0 {
			return 0
		}
		return 8
	}
	return int(n)
}

// cTypeName returns t as C spells it ("const char *", "long (*)(long)").
func cTypeName(t dwarf.Type) string {
	if t == nil {
		return "void"
	}
	return cDecl(t, "", 0)
}

func cDecl(t dwarf.Type, inner string, depth int) string {
	if depth > 16 {
		return "?"
	}
	join := func(base string) string {
		if inner == "" {
			return base
		}
		return base + " " + inner
	}
	switch u := t.(type) {
	case nil:
		return join("void")
	case *dwarf.PtrType:
		return cDecl(u.Type, "*"+inner, depth+1)
	case *dwarf.QualType:
		if _, ok := u.Type.(*dwarf.ArrayType); ok {
			// A qualified array is an array of qualified elements, and
			// the element type says so already.
			return cDecl(u.Type, inner, depth+1)
		}
		if _, ok := u.Type.(*dwarf.PtrType); ok {
			return cDecl(u.Type, strings.TrimSpace(" "+u.Qual+" "+inner), depth+1)
		}
		return u.Qual + " " + cDecl(u.Type, inner, depth+1)
	case *dwarf.ArrayType:
		if strings.HasPrefix(inner, "*") {
			inner = "(" + inner + ")"
		}
		n := ""
		if u.Count >= 0 {
			n = strconv.FormatInt(u.Count, 10)
		}
		return cDecl(u.Type, inner+"["+n+"]", depth+1)
	case *dwarf.FuncType:
		if strings.HasPrefix(inner, "*") {
			inner = "(" + inner + ")"
		}
		var ps []string
		for _, pt := range u.ParamType {
			if _, ok := pt.(*dwarf.DotDotDotType); ok {
				ps = append(ps, "...")
				continue
			}
			ps = append(ps, cDecl(pt, "", depth+1))
		}
		if len(ps) == 0 {
			ps = []string{"void"}
		}
		return cDecl(u.ReturnType, inner+"("+strings.Join(ps, ", ")+")", depth+1)
	case *dwarf.StructType:
		name := u.StructName
		if name == "" {
			name = "{...}"
		}
		return join(u.Kind + " " + name)
	case *dwarf.EnumType:
		name := u.EnumName
		if name == "" {
			name = "{...}"
		}
		return join("enum " + name)
	case *dwarf.TypedefType:
		return join(u.Name)
	case *dwarf.VoidType:
		return join("void")
	}
	name := t.Common().Name
	if name == "" {
		name = t.String()
	}
	return join(name)
}

// format prints b, the bytes of a value of type t, at nesting level lvl.
func (p *printer) format(t dwarf.Type, b []byte, lvl int) string {
	var sb strings.Builder
	p.write(&sb, t, b, lvl)
	return sb.String()
}

func (p *printer) write(sb *strings.Builder, t dwarf.Type, b []byte, lvl int) {
	st := strip(t)
	size := typeSize(t)
	if _, ok := st.(*dwarf.ArrayType); !ok && size > len(b) {
		sb.WriteString("<incomplete value>")
		return
	}
	switch u := st.(type) {
	case nil:
		fmt.Fprintf(sb, "%#x", uintOf(b))
	case *dwarf.CharType, *dwarf.UcharType:
		_, signed := u.(*dwarf.CharType)
		v := intOf(b[:size], signed)
		fmt.Fprintf(sb, "%d %s", v, charLit(byte(v)))
	case *dwarf.BoolType:
		switch v := uintOf(b[:size]); v {
		case 0:
			sb.WriteString("false")
		case 1:
			sb.WriteString("true")
		default:
			fmt.Fprintf(sb, "%d", v)
		}
	case *dwarf.IntType:
		fmt.Fprintf(sb, "%d", intOf(b[:size], true))
	case *dwarf.UintType:
		fmt.Fprintf(sb, "%d", uintOf(b[:size]))
	case *dwarf.FloatType:
		switch size {
		case 4:
			sb.WriteString(strconv.FormatFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), 'g', 9, 32))
		case 8:
			sb.WriteString(strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)), 'g', 17, 64))
		default:
			fmt.Fprintf(sb, "<%d-byte float>", size)
		}
	case *dwarf.EnumType:
		v := intOf(b[:size], true)
		for _, e := range u.Val {
			if e.Val == v {
				sb.WriteString(e.Name)
				return
			}
		}
		fmt.Fprintf(sb, "%d", v)
	case *dwarf.PtrType:
		p.pointer(sb, u, uintOf(b[:8]))
	case *dwarf.StructType:
		if u.Incomplete {
			sb.WriteString("<incomplete type>")
			return
		}
		if lvl >= p.opts.Depth {
			sb.WriteString("{...}")
			return
		}
		sb.WriteByte('{')
		for i, f := range u.Field {
			if i > 0 {
				sb.WriteString(", ")
			}
			if f.Name != "" {
				sb.WriteString(f.Name)
				sb.WriteString(" = ")
			}
			if f.BitSize > 0 {
				p.bitField(sb, f, b)
				continue
			}
			off := int(f.ByteOffset)
			fs := typeSize(f.Type)
			if off < 0 || off+fs > len(b) {
				sb.WriteString("<unavailable>")
				continue
			}
			p.write(sb, f.Type, b[off:off+fs], lvl+1)
		}
		sb.WriteByte('}')
	case *dwarf.ArrayType:
		p.array(sb, u, b, lvl)
	default:
		fmt.Fprintf(sb, "%#x", uintOf(b))
	}
}

// bitField prints a bit-field member.
func (p *printer) bitField(sb *strings.Builder, f *dwarf.StructField, b []byte) {
	pos := f.DataBitOffset
	if pos == 0 && f.BitOffset != 0 || f.DataBitOffset == 0 && f.ByteSize > 0 {
		pos = f.ByteOffset*8 + f.ByteSize*8 - f.BitOffset - f.BitSize
	}
	if pos < 0 || f.BitSize > 64 || (pos+f.BitSize+7)/8 > int64(len(b)) {
		sb.WriteString("<unavailable>")
		return
	}
	var v uint64
	for i := int64(0); i < f.BitSize; i++ {
		bit := pos + i
		if b[bit/8]>>(bit%8)&1 != 0 {
			v |= 1 << i
		}
	}
	switch ft := strip(f.Type).(type) {
	case *dwarf.IntType, *dwarf.CharType, *dwarf.EnumType:
		if v&(1<<(f.BitSize-1)) != 0 && f.BitSize < 64 {
			v |= ^uint64(0) << f.BitSize
		}
		if et, ok := ft.(*dwarf.EnumType); ok {
			for _, e := range et.Val {
				if e.Val == int64(v) {
					sb.WriteString(e.Name)
					return
				}
			}
		}
		fmt.Fprintf(sb, "%d", int64(v))
	case *dwarf.BoolType:
		if v == 0 {
			sb.WriteString("false")
		} else {
			sb.WriteString("true")
		}
	default:
		fmt.Fprintf(sb, "%d", v)
	}
}

// pointer prints an address with the symbol it points into, and the
// string a char pointer points to.
func (p *printer) pointer(sb *strings.Builder, t *dwarf.PtrType, a uint64) {
	fmt.Fprintf(sb, "%#x", a)
	if a == 0 {
		return
	}
	if sym, ok := p.s.Symbol(a); ok && (sym.Size == 0 || a-sym.Addr < sym.Size || a == sym.Addr) {
		if a == sym.Addr {
			fmt.Fprintf(sb, " <%s>", sym.Name)
		} else {
			fmt.Fprintf(sb, " <%s+%d>", sym.Name, a-sym.Addr)
		}
		if !isChar(t.Type) {
			return
		}
	}
	if p.opts.NoStrings || !isChar(t.Type) || p.mem == nil {
		return
	}
	buf := make([]byte, p.opts.MaxString)
	n := p.readUpTo(buf, a)
	if n == 0 {
		fmt.Fprintf(sb, " <error: Cannot access memory at address %#x>", a)
		return
	}
	s := buf[:n]
	end := -1
	for i, c := range s {
		if c == 0 {
			end = i
			break
		}
	}
	sb.WriteByte(' ')
	if end >= 0 {
		writeString(sb, s[:end])
		return
	}
	writeString(sb, s)
	if n == len(buf) {
		sb.WriteString("...")
	}
}

// readUpTo reads as much of buf at a as is readable, in pieces that stop
// at a page boundary.
func (p *printer) readUpTo(buf []byte, a uint64) int {
	got := 0
	for got < len(buf) {
		chunk := len(buf) - got
		if pg := 4096 - int((a+uint64(got))%4096); chunk > pg {
			chunk = pg
		}
		n, _ := p.mem.ReadAt(buf[got:got+chunk], a+uint64(got))
		got += n
		if n < chunk {
			break
		}
		for _, c := range buf[got-n : got] {
			if c == 0 {
				return got
			}
		}
	}
	return got
}

func isChar(t dwarf.Type) bool {
	switch u := strip(t).(type) {
	case *dwarf.CharType, *dwarf.UcharType:
		return u.Size() == 1
	}
	return false
}

// array prints an array as gdb does: {1, 2, 3}, runs of more than ten equal
// elements as "0 <repeats 16 times>", char arrays as strings.
func (p *printer) array(sb *strings.Builder, t *dwarf.ArrayType, b []byte, lvl int) {
	es := typeSize(t.Type)
	if t.Count < 0 || es <= 0 {
		sb.WriteString("<variable-length array>")
		return
	}
	n := int(t.Count)
	if n*es > len(b) {
		n = len(b) / es
	}
	if isChar(t.Type) {
		charArray(sb, b[:n], p.opts.MaxString)
		return
	}
	if lvl >= p.opts.Depth {
		sb.WriteString("{...}")
		return
	}
	sb.WriteByte('{')
	printed := 0
	for i := 0; i < n; {
		j := i + 1
		for j < n && string(b[j*es:(j+1)*es]) == string(b[i*es:(i+1)*es]) {
			j++
		}
		if printed > 0 {
			sb.WriteString(", ")
		}
		if printed >= p.opts.MaxElements {
			sb.WriteString("...")
			break
		}
		p.write(sb, t.Type, b[i*es:(i+1)*es], lvl+1)
		if reps := j - i; reps > repeatThreshold {
			fmt.Fprintf(sb, " <repeats %d times>", reps)
			i = j
			printed += repeatThreshold
		} else {
			i++
			printed++
		}
	}
	sb.WriteByte('}')
}

// repeatThreshold is gdb's "print repeats": longer runs are folded.
const repeatThreshold = 10

// charArray prints a char array as gdb does with "print null-stop off": the
// whole array as a string, a trailing NUL dropped, runs of more than ten
// equal characters as 'c' <repeats N times>.
func charArray(sb *strings.Builder, b []byte, limit int) {
	if len(b) > 0 && b[len(b)-1] == 0 {
		// gdb drops one trailing NUL, and a run of NULs ending the array
		// when it is long.
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		sb.WriteString(`""`)
		return
	}
	var parts []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			var s strings.Builder
			writeString(&s, cur)
			parts = append(parts, s.String())
			cur = cur[:0]
		}
	}
	trunc := false
	if len(b) > limit {
		b, trunc = b[:limit], true
	}
	for i := 0; i < len(b); {
		j := i + 1
		for j < len(b) && b[j] == b[i] {
			j++
		}
		if j-i > repeatThreshold {
			flush()
			parts = append(parts, fmt.Sprintf("%s <repeats %d times>", charLit(b[i]), j-i))
		} else {
			cur = append(cur, b[i:j]...)
		}
		i = j
	}
	flush()
	sb.WriteString(strings.Join(parts, ", "))
	if trunc {
		sb.WriteString("...")
	}
}

// charLit is a C character literal as gdb prints it: 'a', '\n', '\000'.
func charLit(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	return "'" + escape(c, '\'') + "'"
}

func writeString(sb *strings.Builder, s []byte) {
	sb.WriteByte('"')
	for _, c := range s {
		sb.WriteString(escape(c, '"'))
	}
	sb.WriteByte('"')
}

func escape(c byte, quote byte) string {
	switch c {
	case '\a':
		return `\a`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	case '\v':
		return `\v`
	case 033:
		return `\033`
	case '\\':
		return `\\`
	}
	if c == quote {
		return `\` + string(c)
	}
	if c >= 0x20 && c < 0x7f {
		return string(c)
	}
	return fmt.Sprintf(`\%03o`, c)
}

func uintOf(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0 && i < 8; i-- {
		v = v<<8 | uint64(b[i])
	}
	if len(b) > 8 {
		return binary.LittleEndian.Uint64(b)
	}
	return v
}

func intOf(b []byte, signed bool) int64 {
	v := uintOf(b)
	if signed && len(b) > 0 && len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		v |= ^uint64(0) << (8 * len(b))
	}
	return int64(v)
}
