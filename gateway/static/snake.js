// Snake on a 20×20 canvas, steered with the keyboard.
"use strict";
const CELLS = 20, SIZE = 20, TICK_MS = 120;
const DIRECTIONS = {
  ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0],
  w: [0, -1], s: [0, 1], a: [-1, 0], d: [1, 0],
};
const canvas = document.getElementById("board");
const context = canvas.getContext("2d");
const status = document.getElementById("status");
let snake, direction, queued, food, score, timer = null, paused = false;

function placeFood() {
  do {
    food = [Math.floor(Math.random() * CELLS), Math.floor(Math.random() * CELLS)];
  } while (snake.some(([x, y]) => x === food[0] && y === food[1]));
}

function draw() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "#cf222e";
  context.fillRect(food[0] * SIZE, food[1] * SIZE, SIZE - 1, SIZE - 1);
  context.fillStyle = "#1a7f37";
  for (const [x, y] of snake) context.fillRect(x * SIZE, y * SIZE, SIZE - 1, SIZE - 1);
}

function end() {
  clearInterval(timer);
  timer = null;
  status.textContent = `Game over. Score ${score}. Press Start to play again.`;
}

function tick() {
  if (paused) return;
  if (queued) { direction = queued; queued = null; }
  const [hx, hy] = snake[0];
  const head = [hx + direction[0], hy + direction[1]];
  const outside = head[0] < 0 || head[1] < 0 || head[0] >= CELLS || head[1] >= CELLS;
  if (outside || snake.some(([x, y]) => x === head[0] && y === head[1])) { end(); return; }
  snake.unshift(head);
  if (head[0] === food[0] && head[1] === food[1]) {
    score++;
    placeFood();
  } else {
    snake.pop();
  }
  status.textContent = `Score ${score}.`;
  draw();
}

function start() {
  snake = [[5, 10], [4, 10], [3, 10]];
  direction = [1, 0];
  queued = null;
  score = 0;
  paused = false;
  placeFood();
  draw();
  clearInterval(timer);
  timer = setInterval(tick, TICK_MS);
  status.textContent = "Score 0.";
  canvas.focus();
}

document.getElementById("start").addEventListener("click", start);
document.addEventListener("keydown", (event) => {
  if (!timer) return;
  if (event.key === " ") { paused = !paused; status.textContent = paused ? "Paused." : `Score ${score}.`; event.preventDefault(); return; }
  const next = DIRECTIONS[event.key];
  if (!next) return;
  event.preventDefault();
  // No turning straight back into yourself.
  if (next[0] === -direction[0] && next[1] === -direction[1]) return;
  queued = next;
});
