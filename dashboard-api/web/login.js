// The login page: POST /api/v1/auth/login, keep the token, go to the role's home page.
import { api, homeOf, saveSession, session } from "/ui/assets/common.js";

const form = document.getElementById("login");
const message = document.getElementById("message");
const button = document.getElementById("submit");

function say(kind, text) {
  message.className = kind;
  message.textContent = text;
}

const reason = new URLSearchParams(location.search).get("reason");
const current = session();
if (current && !reason) {
  location.replace(homeOf(current.user.role));
} else if (reason === "expired") {
  say("notice", "登录已过期或已退出，请重新登录");
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  button.disabled = true;
  say("notice", "正在登录…");
  try {
    const login = await api("/api/v1/auth/login", {
      method: "POST",
      body: { username: form.username.value.trim(), password: form.password.value },
    });
    if (login.user.role === "publisher") {
      say("error", "数据上报账号只能向接口发送事件，不能登录看板。请使用个人账号。");
      return;
    }
    saveSession(login);
    location.replace(homeOf(login.user.role));
  } catch (e) {
    say("error", e.status === 401 ? "用户名或密码错误" : e.message);
  } finally {
    button.disabled = false;
  }
});
