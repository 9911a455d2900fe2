package dump

import "errors"

// errLZO reports a corrupt LZO1X stream.
var errLZO = errors.New("corrupt LZO1X data")

// lzo1xDecompress decodes one LZO1X block (as written by lzo1x_1_compress,
// the LZO makedumpfile and QEMU use) into at most max bytes. It follows the
// Linux kernel's lzo1x_decompress_safe: every read and write is bounds
// checked, so corrupt input gives errLZO, never a panic or an overrun.
func lzo1xDecompress(in []byte, max int) ([]byte, error) {
	out := make([]byte, 0, max)
	ip := 0
	need := func(n int) bool { return n >= 0 && ip+n <= len(in) }
	// literal copies n bytes from the input.
	literal := func(n int) bool {
		if !need(n) || len(out)+n > max {
			return false
		}
		out = append(out, in[ip:ip+n]...)
		ip += n
		return true
	}
	// match copies n bytes from dist bytes back in the output.
	match := func(dist, n int) bool {
		if dist <= 0 || dist > len(out) || len(out)+n > max {
			return false
		}
		p := len(out) - dist
		for i := 0; i < n; i++ {
			out = append(out, out[p+i])
		}
		return true
	}
	// runLen reads the zero-extended length of a long literal or match.
	runLen := func(base int) (int, bool) {
		zeros := 0
		for need(1) && in[ip] == 0 {
			ip++
			zeros++
			if zeros > len(in) {
				return 0, false
			}
		}
		if !need(1) {
			return 0, false
		}
		n := base + 255*zeros + int(in[ip])
		ip++
		return n, true
	}
	if len(in) < 3 {
		return nil, errLZO
	}
	state := 0
	if in[0] > 17 {
		t := int(in[0]) - 17
		ip++
		if !literal(t) {
			return nil, errLZO
		}
		if t < 4 {
			state = t
		} else {
			state = 4
		}
	}
	for {
		if !need(1) {
			return nil, errLZO
		}
		t := int(in[ip])
		ip++
		var dist, n, next int
		switch {
		case t < 16:
			switch state {
			case 0:
				if t == 0 {
					v, ok := runLen(15)
					if !ok {
						return nil, errLZO
					}
					t = v
				}
				if !literal(t + 3) {
					return nil, errLZO
				}
				state = 4
				continue
			case 4:
				if !need(1) {
					return nil, errLZO
				}
				next = t & 3
				dist = 1 + 0x800 + t>>2 + int(in[ip])<<2
				ip++
				n = 3
			default:
				if !need(1) {
					return nil, errLZO
				}
				next = t & 3
				dist = 1 + t>>2 + int(in[ip])<<2
				ip++
				n = 2
			}
		case t >= 64:
			if !need(1) {
				return nil, errLZO
			}
			next = t & 3
			dist = 1 + (t>>2)&7 + int(in[ip])<<3
			ip++
			n = t>>5 + 1
		case t >= 32:
			n = t&31 + 2
			if n == 2 {
				v, ok := runLen(31)
				if !ok {
					return nil, errLZO
				}
				n = v + 2
			}
			if !need(2) {
				return nil, errLZO
			}
			le := int(in[ip]) | int(in[ip+1])<<8
			ip += 2
			dist = 1 + le>>2
			next = le & 3
		default: // 16..31
			n = t&7 + 2
			if n == 2 {
				v, ok := runLen(7)
				if !ok {
					return nil, errLZO
				}
				n = v + 2
			}
			if !need(2) {
				return nil, errLZO
			}
			le := int(in[ip]) | int(in[ip+1])<<8
			ip += 2
			dist = (t&8)<<11 + le>>2
			next = le & 3
			if dist == 0 {
				if n != 3 {
					return nil, errLZO
				}
				return out, nil // end of stream
			}
			dist += 0x4000
		}
		if !match(dist, n) || !literal(next) {
			return nil, errLZO
		}
		state = next
	}
}
