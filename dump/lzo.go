package dump

import "errors"

// errLZO reports a corrupt LZO1X stream.
var errLZO = errors.New("corrupt LZO1X data")

// lzo1xDecompress decodes one LZO1X block (as written by lzo1x_1_compress,
// the LZO makedumpfile and QEMU use) into at most max bytes. It follows the
// Linux kernel's lzo1x_decompress_safe: every read and write is bounds
// checked, so corrupt input gives errLZO, never a panic or an overrun.
func lzo1xDecompress(in []byte, max int) ([]byte, error) {
	if len(in) < 3 || max < 0 {
		return nil, errLZO
	}
	out := make([]byte, max)
	ip, op := 0, 0
	state := 0
	if in[0] > 17 {
		t := int(in[0]) - 17
		ip++
		if t > len(in)-ip || t > max-op {
			return nil, errLZO
		}
		op += copy(out[op:], in[ip:ip+t])
		ip += t
		state = min(t, 4)
	}
	for {
		if ip >= len(in) {
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
					v, ok := lzoRunLen(in, &ip, 15)
					if !ok {
						return nil, errLZO
					}
					t = v
				}
				if n = t + 3; n > len(in)-ip || n > max-op {
					return nil, errLZO
				}
				op += copy(out[op:], in[ip:ip+n])
				ip += n
				state = 4
				continue
			case 4:
				if ip >= len(in) {
					return nil, errLZO
				}
				next = t & 3
				dist = 1 + 0x800 + t>>2 + int(in[ip])<<2
				ip++
				n = 3
			default:
				if ip >= len(in) {
					return nil, errLZO
				}
				next = t & 3
				dist = 1 + t>>2 + int(in[ip])<<2
				ip++
				n = 2
			}
		case t >= 64:
			if ip >= len(in) {
				return nil, errLZO
			}
			next = t & 3
			dist = 1 + (t>>2)&7 + int(in[ip])<<3
			ip++
			n = t>>5 + 1
		case t >= 32:
			n = t&31 + 2
			if n == 2 {
				v, ok := lzoRunLen(in, &ip, 31)
				if !ok {
					return nil, errLZO
				}
				n = v + 2
			}
			if len(in)-ip < 2 {
				return nil, errLZO
			}
			le := int(in[ip]) | int(in[ip+1])<<8
			ip += 2
			dist = 1 + le>>2
			next = le & 3
		default: // 16..31
			n = t&7 + 2
			if n == 2 {
				v, ok := lzoRunLen(in, &ip, 7)
				if !ok {
					return nil, errLZO
				}
				n = v + 2
			}
			if len(in)-ip < 2 {
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
				return out[:op], nil // end of stream
			}
			dist += 0x4000
		}
		// The match: n bytes from dist back in the output. Where they
		// overlap what they write (dist < n) the dist bytes repeat:
		// each copy takes all that is written from the match's start.
		if dist <= 0 || dist > op || n > max-op {
			return nil, errLZO
		}
		for p, end := op-dist, op+n; op < end; {
			op += copy(out[op:end], out[p:op])
		}
		// Then next (0-3) literal bytes.
		if next > len(in)-ip || next > max-op {
			return nil, errLZO
		}
		op += copy(out[op:], in[ip:ip+next])
		ip += next
		state = next
	}
}

// lzoRunLen reads the zero-extended length of a long literal or match at
// in[*ip]: base + 255 per zero byte + the first nonzero byte.
func lzoRunLen(in []byte, ip *int, base int) (int, bool) {
	i := *ip
	for i < len(in) && in[i] == 0 {
		i++
	}
	if i >= len(in) {
		return 0, false
	}
	n := base + 255*(i-*ip) + int(in[i])
	*ip = i + 1
	return n, true
}
