from django.urls import path

from . import views

app_name = "chats"

urlpatterns = [
    path("agents/", views.agents, name="agents"),
    path("agents/new/", views.chat_new, name="new"),
    path("agents/chats/<int:pk>/", views.chat_detail, name="detail"),
    path("agents/chats/<int:pk>/events/", views.chat_events, name="events"),
    path("agents/chats/<int:pk>/messages/", views.message_send, name="send"),
    path(
        "agents/chats/<int:pk>/messages/<int:message_id>/edit/",
        views.message_edit,
        name="edit-message",
    ),
    path(
        "agents/chats/<int:pk>/messages/<int:message_id>/remove/",
        views.message_remove,
        name="remove-message",
    ),
    path("agents/chats/<int:pk>/stop/", views.chat_stop, name="stop"),
    path("agents/chats/<int:pk>/subagents/", views.subagent_new, name="subagent"),
]
