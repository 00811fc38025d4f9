// Added to the fork (not in github.com/RaduBerinde/btreemap); same license as the package.

package btreemap

// Builder builds a map from keys added in strictly increasing order, in O(n) and without
// comparing a single key: the items go into the rightmost node of each level, filled to
// the maximum (a tree built by ReplaceOrInsert in key order splits every node in half and
// costs a descent with a binary search per level and per key).
//
// Nodes are full except along the right edge, which Build evens out with the left
// neighbours, so the result holds every invariant of the B-tree. The caller guarantees
// the order (the builder does not check it).
type Builder[K any, V any] struct {
	t *BTreeMap[K, V]
	// open[h] is the rightmost node at height h (0: the leaves), still being filled. Every
	// other node is closed, and full.
	open []*node[K, V]
}

// NewBuilder starts a map of the given degree and order (see New).
func NewBuilder[K any, V any](degree int, cmp CmpFunc[K]) *Builder[K, V] {
	return &Builder[K, V]{t: New[K, V](degree, cmp)}
}

// Add appends key (greater than every key added before) with value.
func (b *Builder[K, V]) Add(key K, value V) {
	b.t.length++
	item := kv[K, V]{k: key, v: value}
	if len(b.open) == 0 {
		b.open = append(b.open, b.newNode(false))
	}
	leaf := b.open[0]
	if len(leaf.items) < b.t.maxItems() {
		leaf.items = append(leaf.items, item)
		return
	}
	// The leaf is full: item separates it from a new leaf, in the level above.
	next := b.newNode(false)
	b.open[0] = next
	b.push(1, leaf, item, next)
}

// push appends item and, after it, child (the new rightmost node at height h-1, right of
// left) to the rightmost node at height h, closing that node when it is full.
func (b *Builder[K, V]) push(h int, left *node[K, V], item kv[K, V], child *node[K, V]) {
	if h == len(b.open) {
		// left was the root: a new root holds it and child.
		root := b.newNode(true)
		root.children = append(root.children, left)
		b.open = append(b.open, root)
	}
	n := b.open[h]
	if len(n.items) < b.t.maxItems() {
		n.items = append(n.items, item)
		n.children = append(n.children, child)
		return
	}
	next := b.newNode(true)
	next.children = append(next.children, child)
	b.open[h] = next
	b.push(h+1, n, item, next)
}

func (b *Builder[K, V]) newNode(inner bool) *node[K, V] {
	n := b.t.cow.newNode()
	if inner {
		n.children = b.t.cow.newChildren()
	}
	return n
}

// Build returns the map; the builder must not be used afterwards.
func (b *Builder[K, V]) Build() *BTreeMap[K, V] {
	t := b.t
	if len(b.open) == 0 {
		return t
	}
	top := len(b.open) - 1
	t.root = b.open[top]
	// From the root down, the rightmost node of the level below may hold fewer than
	// minItems (none at all when it was opened by the last Add): it is evened out with its
	// left sibling (a closed node, so full) through their separator in the parent. The
	// parent has that separator: a root above the leaves got an item when it was made,
	// and each node below the root was evened out in the step before.
	for h := top; h > 0; h-- {
		p := b.open[h]
		c := p.children[len(p.children)-1]
		if len(c.items) >= t.minItems() {
			continue
		}
		l := p.children[len(p.children)-2]
		even(l, &p.items[len(p.items)-1], c)
	}
	b.t, b.open = nil, nil
	return t
}

// even moves items (and their children) from the end of l, through the separator sep,
// to the front of c, so that both hold about as many: l is full and c is short (c's
// capacity, that of a full node, holds what it ends up with).
func even[K any, V any](l *node[K, V], sep *kv[K, V], c *node[K, V]) {
	total := len(l.items) + 1 + len(c.items)
	keep := (total - 1) / 2 // l keeps this many; c gets total-1-keep
	moved := len(l.items) - keep
	ci := make(items[kv[K, V]], 0, cap(c.items))
	ci = append(ci, l.items[keep+1:]...)
	ci = append(ci, *sep)
	ci = append(ci, c.items...)
	*sep = l.items[keep]
	l.items.truncate(keep)
	c.items = ci
	if len(c.children) > 0 {
		children := make(items[*node[K, V]], 0, cap(c.children))
		children = append(children, l.children[len(l.children)-moved:]...)
		children = append(children, c.children...)
		l.children.truncate(keep + 1)
		c.children = children
	}
}
