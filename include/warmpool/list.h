/*
 * list — intrusive circular doubly linked list (no allocation; a node lives inside
 * the object that is on the list). An object is on at most one list per node.
 */
#ifndef WARMPOOL_LIST_H
#define WARMPOOL_LIST_H

#include <stddef.h>

struct wp_list {
    struct wp_list *prev, *next;
};

#define list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

static inline void list_init(struct wp_list *head)
{
    head->prev = head->next = head;
}

static inline int list_empty(const struct wp_list *head)
{
    return head->next == head;
}

/* A node that was list_init'ed or removed is "detached": linked to itself. */
static inline int list_attached(const struct wp_list *node)
{
    return node->next != node && node->next != NULL;
}

static inline void list_insert_between(struct wp_list *node, struct wp_list *prev,
                                       struct wp_list *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

static inline void list_push_tail(struct wp_list *head, struct wp_list *node)
{
    list_insert_between(node, head->prev, head);
}

static inline void list_push_head(struct wp_list *head, struct wp_list *node)
{
    list_insert_between(node, head, head->next);
}

static inline void list_remove(struct wp_list *node)
{
    if (node->next && node->next != node) {
        node->prev->next = node->next;
        node->next->prev = node->prev;
    }
    node->prev = node->next = node;
}

static inline struct wp_list *list_pop_head(struct wp_list *head)
{
    if (list_empty(head))
        return NULL;
    struct wp_list *node = head->next;
    list_remove(node);
    return node;
}

#define list_for_each_safe(pos, tmp, head)                                                         \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
