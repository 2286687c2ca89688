// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReceiverBase} from "./ReceiverBase.sol";

/// @notice What a gateway calls on the destination chain to deliver a message.
interface IMessageReceiver {
    /// @notice Handle a message; `value` units of the gateway's token were transferred just before.
    /// @param sourceChainId The chain the message was sent on.
    /// @param sender Who sent it there.
    /// @param payload The sender's bytes.
    /// @param value Token units released to this receiver with the message.
    function receiveMessage(uint256 sourceChainId, address sender, bytes calldata payload, uint256 value) external;
}

/// @title CrossChainGateway - messages and a token leg between chains, executed on a DON's attestation
/// @notice On the source chain, `send` locks the value, takes the sender's next nonce and emits
/// MessageSent. On the destination chain, a DON report attesting that event (source chain id,
/// source gateway, tx hash, log index, sender, nonce, receiver, value, out-of-order flag, payload)
/// executes it: exactly once, in nonce order per (source chain, sender) unless the message was
/// sent out of order, releasing the value to the receiver and calling it. A failed execution is
/// recorded (the nonce still advances, so one bad message cannot block a sender) and anyone may
/// re-execute it. Outbound value per destination is limited by a token bucket.
contract CrossChainGateway is ReceiverBase, ReentrancyGuard, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice A message as attested by the DON.
    struct Message {
        uint256 sourceChainId;
        address sourceGateway;
        bytes32 sourceTxHash;
        uint256 logIndex;
        address sender;
        uint64 nonce;
        address receiver;
        uint256 value;
        bool outOfOrder;
        bytes payload;
    }

    /// @notice Where a message stands on the destination chain.
    enum State {
        Unknown,
        Executed,
        Failed
    }

    /// @notice A token bucket: up to `capacity` units, refilled at `rate` units per second.
    struct Bucket {
        uint128 capacity;
        uint128 rate;
        uint128 tokens;
        uint64 updatedAt;
    }

    /// @notice A zero receiver, or a send to this very chain.
    error InvalidDestination(uint256 destChainId, address receiver);
    /// @notice No bucket is configured for the destination: sending there is not enabled.
    error DestinationDisabled(uint256 destChainId);
    /// @notice The send would take more value than the destination's bucket holds.
    error RateLimited(uint256 destChainId, uint256 requested, uint256 available);
    /// @notice The report names a source gateway that is not the one configured for its chain.
    error UnknownSource(uint256 sourceChainId, address sourceGateway);
    /// @notice The message was already executed or recorded as failed.
    error AlreadyProcessed(bytes32 messageId, State state);
    /// @notice An ordered message arrived before its predecessors.
    error OutOfOrder(uint256 sourceChainId, address sender, uint64 expected, uint64 received);
    /// @notice Manual execution of a message that is not recorded as failed.
    error NotFailed(bytes32 messageId, State state);
    /// @notice Only the gateway itself may call this.
    error OnlySelf(address caller);
    /// @notice A bucket whose capacity is zero with a non-zero rate.
    error InvalidBucket(uint256 capacity, uint256 rate);

    /// @notice Emitted on the source chain for every message.
    event MessageSent(
        uint256 indexed destChainId,
        address indexed sender,
        uint64 indexed nonce,
        address receiver,
        uint256 value,
        bool outOfOrder,
        bytes payload
    );
    /// @notice Emitted on the destination chain when a message executed.
    event MessageExecuted(
        bytes32 indexed messageId, uint256 indexed sourceChainId, address indexed sender, uint64 nonce
    );
    /// @notice Emitted on the destination chain when a message's execution failed (re-executable).
    event MessageFailed(bytes32 indexed messageId, uint256 indexed sourceChainId, address indexed sender, bytes reason);
    /// @notice Emitted when the gateway trusted for a source chain is set.
    event SourceSet(uint256 indexed sourceChainId, address gateway);
    /// @notice Emitted when a destination's rate limit is set.
    event BucketSet(uint256 indexed destChainId, uint256 capacity, uint256 rate);

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch CrossChainGateway 1.0.0";
    /// @dev Gas kept back to record a failure after the receiver call.
    uint256 internal constant GAS_RESERVE = 30_000;

    IERC20 internal immutable i_token;
    mapping(address sender => uint64 nonce) internal s_sentNonces;
    mapping(uint256 destChainId => Bucket bucket) internal s_buckets;
    mapping(uint256 sourceChainId => address gateway) internal s_sources;
    mapping(uint256 sourceChainId => mapping(address sender => uint64 nonce)) internal s_executedNonces;
    mapping(bytes32 messageId => State state) internal s_states;

    /// @param valueToken The token of the value leg (locked on the source, released on the destination).
    /// @param forwarder The only address allowed to deliver reports.
    /// @param workflowOwner The workflow owner reports must name.
    /// @param workflowId The workflow id reports must name.
    /// @param freshnessWindow How old (seconds) a report may be when it arrives.
    constructor(IERC20 valueToken, address forwarder, address workflowOwner, bytes32 workflowId, uint32 freshnessWindow)
        ReceiverBase(forwarder, workflowOwner, workflowId, freshnessWindow)
        Ownable(msg.sender)
    {
        i_token = valueToken;
    }

    // ================================================================ source chain

    /// @notice Send `payload` and `value` units of the token to `receiver` on `destChainId`, in order.
    /// @param destChainId The destination chain.
    /// @param receiver The IMessageReceiver there.
    /// @param payload Bytes for the receiver.
    /// @param value Token units locked here and released there (pulled from the sender).
    /// @return nonce The sender's nonce for this message (1, 2, 3, ...).
    function send(uint256 destChainId, address receiver, bytes calldata payload, uint256 value)
        external
        nonReentrant
        returns (uint64 nonce)
    {
        return _send(destChainId, receiver, payload, value, false);
    }

    /// @notice As send, but the destination may execute this message before its predecessors.
    /// @param destChainId The destination chain.
    /// @param receiver The IMessageReceiver there.
    /// @param payload Bytes for the receiver.
    /// @param value Token units locked here and released there.
    /// @return nonce The sender's nonce for this message.
    function sendOutOfOrder(uint256 destChainId, address receiver, bytes calldata payload, uint256 value)
        external
        nonReentrant
        returns (uint64 nonce)
    {
        return _send(destChainId, receiver, payload, value, true);
    }

    function _send(uint256 destChainId, address receiver, bytes calldata payload, uint256 value, bool outOfOrder)
        internal
        returns (uint64 nonce)
    {
        if (receiver == address(0) || destChainId == block.chainid) revert InvalidDestination(destChainId, receiver);
        _take(destChainId, value);
        nonce = ++s_sentNonces[msg.sender];
        emit MessageSent(destChainId, msg.sender, nonce, receiver, value, outOfOrder, payload);
        if (value > 0) i_token.safeTransferFrom(msg.sender, address(this), value);
    }

    /// @dev Refill the destination's bucket for the time passed, then take `value` from it.
    function _take(uint256 destChainId, uint256 value) internal {
        Bucket memory bucket = s_buckets[destChainId];
        // slither-disable-next-line incorrect-equality (a configured capacity, not a balance)
        if (bucket.capacity == 0) revert DestinationDisabled(destChainId);
        uint256 available = _available(bucket);
        if (value > available) revert RateLimited(destChainId, value, available);
        // forge-lint: disable-next-line(unsafe-typecast)
        bucket.tokens = uint128(available - value); // <= capacity, a uint128
        bucket.updatedAt = uint64(block.timestamp);
        s_buckets[destChainId] = bucket;
    }

    function _available(Bucket memory bucket) internal view returns (uint256) {
        uint256 refilled = uint256(bucket.tokens) + (block.timestamp - bucket.updatedAt) * uint256(bucket.rate);
        return refilled < bucket.capacity ? refilled : bucket.capacity;
    }

    // ================================================================ destination chain

    /// @inheritdoc ReceiverBase
    /// @dev payload = abi.encode(Message).
    function _processReport(bytes32, bytes2, bytes32, bytes memory payload) internal override nonReentrant {
        Message memory message = abi.decode(payload, (Message));
        bytes32 messageId = getMessageId(message, block.chainid);
        if (s_sources[message.sourceChainId] != message.sourceGateway || message.sourceGateway == address(0)) {
            revert UnknownSource(message.sourceChainId, message.sourceGateway);
        }
        State state = s_states[messageId];
        if (state != State.Unknown) revert AlreadyProcessed(messageId, state);
        if (!message.outOfOrder) {
            uint64 expected = s_executedNonces[message.sourceChainId][message.sender] + 1;
            if (message.nonce != expected) {
                revert OutOfOrder(message.sourceChainId, message.sender, expected, message.nonce);
            }
            s_executedNonces[message.sourceChainId][message.sender] = expected;
        }
        _execute(messageId, message);
    }

    /// @notice Execute a message whose execution failed before (anyone may call).
    /// @param message The message exactly as attested.
    function executeFailed(Message calldata message) external nonReentrant {
        bytes32 messageId = getMessageId(message, block.chainid);
        State state = s_states[messageId];
        if (state != State.Failed) revert NotFailed(messageId, state);
        _execute(messageId, message);
    }

    /// @dev Release and call in one self-call, so a failure undoes both and is only recorded. The
    /// state is written before the call; a receiver reentering to run the message again meets the
    /// reentrancy guard (onReport, executeFailed) or AlreadyProcessed.
    // slither-disable-next-line reentrancy-benign,reentrancy-events (the call is to this gateway; see above)
    function _execute(bytes32 messageId, Message memory message) internal {
        s_states[messageId] = State.Executed;
        try this.deliver{gas: gasleft() - GAS_RESERVE}(message) {
            emit MessageExecuted(messageId, message.sourceChainId, message.sender, message.nonce);
        } catch (bytes memory reason) {
            s_states[messageId] = State.Failed;
            emit MessageFailed(messageId, message.sourceChainId, message.sender, reason);
        }
    }

    /// @notice Release the value and call the receiver; only the gateway itself may call this.
    /// @param message The message being executed.
    function deliver(Message calldata message) external {
        if (msg.sender != address(this)) revert OnlySelf(msg.sender);
        if (message.value > 0) i_token.safeTransfer(message.receiver, message.value);
        IMessageReceiver(message.receiver)
            .receiveMessage(message.sourceChainId, message.sender, message.payload, message.value);
    }

    // ================================================================ admin and views

    /// @notice Trust `gateway` as the gateway of `sourceChainId` (zero: trust none).
    /// @param sourceChainId The source chain.
    /// @param gateway Its gateway.
    function setSource(uint256 sourceChainId, address gateway) external onlyOwner {
        s_sources[sourceChainId] = gateway;
        emit SourceSet(sourceChainId, gateway);
    }

    /// @notice Rate-limit the value sent to `destChainId` (capacity 0 disables the destination).
    /// @param destChainId The destination chain.
    /// @param capacity The most value in flight at once.
    /// @param rate Value units the bucket regains per second.
    function setBucket(uint256 destChainId, uint128 capacity, uint128 rate) external onlyOwner {
        if (capacity == 0 && rate != 0) revert InvalidBucket(capacity, rate);
        Bucket memory bucket = s_buckets[destChainId];
        uint256 available = bucket.capacity == 0 ? capacity : _available(bucket);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint128 tokens = uint128(available < capacity ? available : capacity); // <= capacity
        s_buckets[destChainId] = Bucket(capacity, rate, tokens, uint64(block.timestamp));
        emit BucketSet(destChainId, capacity, rate);
    }

    /// @notice A destination's bucket and the value it would allow now.
    /// @param destChainId The destination chain.
    function getBucket(uint256 destChainId) external view returns (Bucket memory bucket, uint256 available) {
        bucket = s_buckets[destChainId];
        // slither-disable-next-line incorrect-equality (a configured capacity, not a balance)
        available = bucket.capacity == 0 ? 0 : _available(bucket);
    }

    /// @notice The last nonce `sender` used here.
    /// @param sender The sender.
    function getSentNonce(address sender) external view returns (uint64) {
        return s_sentNonces[sender];
    }

    /// @notice The last ordered nonce executed here for (sourceChainId, sender).
    /// @param sourceChainId The source chain.
    /// @param sender The sender.
    function getExecutedNonce(uint256 sourceChainId, address sender) external view returns (uint64) {
        return s_executedNonces[sourceChainId][sender];
    }

    /// @notice Where a message stands here.
    /// @param messageId The message's id (getMessageId).
    function getState(bytes32 messageId) external view returns (State) {
        return s_states[messageId];
    }

    /// @notice The gateway trusted for a source chain.
    /// @param sourceChainId The source chain.
    function getSource(uint256 sourceChainId) external view returns (address) {
        return s_sources[sourceChainId];
    }

    /// @notice The token of the value leg.
    function token() external view returns (IERC20) {
        return i_token;
    }

    /// @notice A message's id: every attested field, the payload's hash and the destination chain.
    /// @param message The message.
    /// @param destChainId The chain it executes on.
    function getMessageId(Message memory message, uint256 destChainId) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                message.sourceChainId,
                message.sourceGateway,
                message.sourceTxHash,
                message.logIndex,
                message.sender,
                message.nonce,
                destChainId,
                message.receiver,
                message.value,
                message.outOfOrder,
                keccak256(message.payload)
            )
        );
    }
}
